import numpy as np
import pytest

from move.extraction.video import VideoDecodeError, read_frames, uniform_segment_indices
from move.extraction.video_files import index_video_files


def test_uniform_segments_take_segment_midpoints():
    assert uniform_segment_indices(100, 4).tolist() == [12, 37, 62, 87]
    assert uniform_segment_indices(8, 8).tolist() == list(range(8))


def test_short_videos_repeat_frames_in_order():
    assert uniform_segment_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]
    assert uniform_segment_indices(1, 4).tolist() == [0, 0, 0, 0]


def test_uniform_segments_reject_empty_video():
    with pytest.raises(ValueError):
        uniform_segment_indices(0, 4)


def test_read_frames_decodes_real_video(tiny_videos):
    path = next(iter(index_video_files(tiny_videos / "videos").values()))
    frames, n_frames = read_frames(path, 4)
    assert frames.shape == (4, 32, 32, 3) and frames.dtype == np.uint8
    assert n_frames == 8
    assert frames.std() > 5  # real content, not a blank frame


@pytest.mark.parametrize(
    "content,reason",
    [(b"", "empty file"), (b"not a video at all" * 50, "could not open: not a video file")],
    ids=["empty", "garbage"],
)
def test_bad_files_raise_decode_error_with_reason(tmp_path, content, reason):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoDecodeError, match=reason):
        read_frames(path, 4)


def test_missing_file_raises_decode_error(tmp_path):
    with pytest.raises(VideoDecodeError, match="file missing"):
        read_frames(tmp_path / "nope.mp4", 4)


def test_index_finds_videos_by_stem_in_any_layout(tmp_path):
    (tmp_path / "train" / "abseiling").mkdir(parents=True)
    (tmp_path / "train" / "abseiling" / "abc_000001_000011.mp4").write_bytes(b"x")
    (tmp_path / "flat_000002_000012.webm").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    found = index_video_files(tmp_path)
    assert sorted(found) == ["abc_000001_000011", "flat_000002_000012"]


def test_audio_only_file_is_no_video_stream(tmp_path):
    import av

    path = tmp_path / "audio.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    with pytest.raises(VideoDecodeError, match="no video stream"):
        read_frames(path, 4)


def test_zero_frame_video_raises_decode_error(tmp_path, monkeypatch):
    import decord

    class ZeroFrames:  # a container whose video stream holds no frames
        def __init__(self, *args, **kwargs):
            pass

        def __len__(self):
            return 0

    monkeypatch.setattr(decord, "VideoReader", ZeroFrames)
    path = tmp_path / "zero.mp4"
    path.write_bytes(b"x" * 100)
    with pytest.raises(VideoDecodeError, match="no decodable frames"):
        read_frames(path, 4)


@pytest.mark.parametrize(
    "raised, reason",
    [
        (
            "[10:31:02] /github/workspace/src/video/ffmpeg/threaded_decoder.cc:292: [10:31:02] "
            "/github/workspace/src/video/ffmpeg/threaded_decoder.cc:218: Check failed: "
            "avcodec_send_packet(dec_ctx_.get(), pkt.get()) >= 0 (-1094995529 vs. 0) Error "
            "sending packet.",
            "could not decode frames: the video data is corrupt",
        ),
        (
            "[09:12:45] /github/workspace/src/video/video_reader.cc:83: ERROR opening: x.mp4, "
            "Invalid data found when processing input",
            "could not open: not a video file, or its header is broken",
        ),
        (
            "[09:12:45] /github/workspace/src/video/video_reader.cc:401: Unable to seek\n"
            "to frame 12",
            "cannot decode (Unable to seek to frame 12)",
        ),
    ],
    ids=["send-packet", "opening", "unknown"],
)
def test_decord_messages_become_reasons_in_words(raised, reason):
    """Weak spot of issue 32: decord's `[hh:mm:ss] file.cc:N:` prefix escaped the strip, and 4
    of 10 broken-video reasons were its internals."""
    from move.extraction.video import VideoDecodeError, decode_errors

    with pytest.raises(VideoDecodeError) as error, decode_errors():
        raise RuntimeError(raised)
    assert str(error.value) == reason
