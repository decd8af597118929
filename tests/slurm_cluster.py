"""A throw-away single-node SLURM cluster on localhost, for tests and for trying the profile by hand.

Everything lives in one folder: a private munge key and socket, a generated ``slurm.conf``, the
daemons' state, spool, logs and pid files. Nothing under /etc is changed; the client commands
(sbatch, squeue, scontrol) find the cluster through ``SLURM_CONF`` (see ``SlurmCluster.env``).
Needs root (slurmd launches jobs as the submitting user) and Debian's ``slurmctld slurmd
slurm-client munge`` packages, which ``install_slurm`` adds with apt-get when they are missing.

By hand:  python tests/slurm_cluster.py start /tmp/cluster   (prints the export line)
          python tests/slurm_cluster.py stop /tmp/cluster
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
DAEMONS = ["munged", "slurmctld", "slurmd"]
PARTITION = "debug"


class ClusterError(RuntimeError):
    """The cluster could not be installed or started; the message says which step and why."""


def missing_programs() -> list[str]:
    """The SLURM/munge programs that are not on PATH."""
    needed = ["munged", "munge", "unmunge", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo"]
    return [name for name in needed if shutil.which(name) is None]


def install_slurm(timeout: float = 600) -> None:
    """apt-get install Debian's SLURM and munge when absent (root only)."""
    if not missing_programs():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ClusterError(
            f"SLURM is not installed ({', '.join(missing_programs())} missing) and apt-get as root is not available"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", *PACKAGES],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise ClusterError(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")
    if missing_programs():
        raise ClusterError(f"still missing after apt-get: {', '.join(missing_programs())}")


def free_port() -> int:
    """A TCP port nobody listens on now (so two clusters on one machine do not collide)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_memory_mb() -> int:
    """About 80% of the machine's RAM, the memory the node offers to jobs."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return int(pages / 2**20 * 0.8)


@dataclass
class SlurmCluster:
    """One slurmctld + one slurmd (+ a private munged) with all files under ``root``."""

    root: Path
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)
    memory_mb: int = field(default_factory=node_memory_mb)
    gpus: int = 0  # GPUs the node advertises as GRES (no device files: for scheduling tests)
    min_job_age: int = 600  # seconds finished jobs stay visible to squeue (no sacct here)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self.hostname = socket.gethostname().split(".")[0]

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def munge_socket(self) -> Path:
        return self.root / "munge" / "munge.socket"

    def env(self) -> dict[str, str]:
        """Environment for client commands (sbatch, squeue, Snakemake) to reach this cluster."""
        path = f"{self.root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": path}

    def pid_file(self, daemon: str) -> Path:
        return self.root / "run" / f"{daemon}.pid"

    def log_file(self, daemon: str) -> Path:
        return self.root / "log" / f"{daemon}.log"

    def write_config(self) -> None:
        """Private munge key and a minimal slurm.conf: no cgroups, no accounting database."""
        for sub in ("munge", "run", "log", "state", "spool"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
            (self.root / sub).chmod(0o700)
        # Inside a job, Snakemake's jobstep plugin drops every SLURM_* variable (SLURM_CONF too)
        # before calling `srun`, which then looks for /etc/slurm/slurm.conf. Rather than write
        # to /etc, jobs find an `srun` on PATH that points at this cluster's config.
        (self.root / "bin").mkdir(parents=True, exist_ok=True)
        wrapper = self.root / "bin" / "srun"
        wrapper.write_text(
            f'#!/bin/sh\nSLURM_CONF={self.conf} exec {shutil.which("srun") or "/usr/bin/srun"} "$@"\n'
        )
        wrapper.chmod(0o755)
        key = self.root / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        ctld_port, node_port = free_port(), free_port()
        gres = f" Gres=gpu:{self.gpus}" if self.gpus else ""
        if self.gpus:
            # Stand-in GPUs: empty files as their "devices" (SLURM drops file-less GPUs). SLURM
            # schedules `--gpus=1` onto them and sets CUDA_VISIBLE_DEVICES; CUDA finds nothing.
            (self.root / "gpu").mkdir(exist_ok=True)
            for index in range(self.gpus):
                (self.root / "gpu" / f"fake{index}").touch()
            (self.root / "gres.conf").write_text(
                f"AutoDetect=off\nNodeName={self.hostname} Name=gpu File={self.root}/gpu/fake[0-{self.gpus - 1}]\n"
            )
        lines = [
            "ClusterName=movetest",
            f"SlurmctldHost={self.hostname}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={node_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={self.pid_file('slurmctld')}",
            f"SlurmdPidFile={self.pid_file('slurmd')}",
            f"SlurmctldLogFile={self.log_file('slurmctld')}",
            f"SlurmdLogFile={self.log_file('slurmd')}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SwitchType=switch/none",
            "MpiDefault=none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "ReturnToService=2",
            f"MinJobAge={self.min_job_age}",
            "SchedulerType=sched/backfill",
            "SchedulerParameters=sched_interval=1",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=30",
            "InactiveLimit=0",
            "KillWait=2",
            # trust the CPUs/memory/GPUs declared below even where the machine has fewer
            "SlurmdParameters=config_overrides",
            *(["GresTypes=gpu"] if self.gpus else []),
            f"NodeName={self.hostname} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb}{gres} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={self.hostname} Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def _spawn(self, command: list[str], daemon: str) -> None:
        done = subprocess.run(command, env=self.env(), capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            log = self.log_file(daemon)
            tail = log.read_text()[-800:] if log.exists() else ""
            raise ClusterError(
                f"{daemon} did not start (exit {done.returncode}): {done.stderr.strip()[-400:]} {tail}"
            )

    def start(self, timeout: float = 60) -> None:
        """Start munged, slurmctld and slurmd; return when the node is idle (or raise)."""
        if os.geteuid() != 0:
            raise ClusterError("a local SLURM node needs root (slurmd runs jobs as their user)")
        try:
            self._start(timeout)
        except BaseException:
            self.stop()  # leave no daemon behind when one of them failed
            raise

    def _start(self, timeout: float) -> None:
        self.write_config()
        self._spawn(
            [
                "munged",
                "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={self.root / 'munge' / 'munge.key'}",
                f"--pid-file={self.pid_file('munged')}",
                f"--log-file={self.log_file('munged')}",
                f"--seed-file={self.root / 'munge' / 'munged.seed'}",
            ],
            "munged",
        )
        check = subprocess.run(
            f"munge -n -S {self.munge_socket} | unmunge -S {self.munge_socket}",
            shell=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if "Success" not in check.stdout:
            raise ClusterError(f"munge round trip failed: {check.stdout} {check.stderr}")
        self._spawn(["slurmctld", "-f", str(self.conf)], "slurmctld")
        self._spawn(["slurmd", "-f", str(self.conf), "-N", self.hostname], "slurmd")
        self.wait_idle(timeout)

    def wait_idle(self, timeout: float) -> None:
        """Poll sinfo until the node accepts jobs."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            done = subprocess.run(
                ["sinfo", "-h", "-N", "-o", "%T"], env=self.env(), capture_output=True, text=True
            )
            state = (done.stdout + done.stderr).strip()
            if done.returncode == 0 and state.rstrip("*") in {"idle", "mixed", "allocated"}:
                return
            time.sleep(0.5)
        logs = " | ".join(
            self.log_file(d).read_text()[-400:] for d in DAEMONS if self.log_file(d).exists()
        )
        raise ClusterError(f"node not idle after {timeout:.0f}s (sinfo: {state!r}); logs: {logs}")

    def pids(self) -> dict[str, int]:
        """The daemons' pids, from their pid files."""
        found = {}
        for daemon in DAEMONS:
            path = self.pid_file(daemon)
            if path.exists() and path.read_text().strip().isdigit():
                found[daemon] = int(path.read_text().strip())
        return found

    def stop(self, timeout: float = 20) -> None:
        """Stop the daemons this cluster started, by the pids in their pid files."""
        for daemon in reversed(DAEMONS):
            pid = self.pids().get(daemon)
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.2)
            else:
                os.kill(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    """CLI: start or stop a cluster rooted in a folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("root", type=Path, help="folder for the cluster's files")
    parser.add_argument(
        "--cpus", type=int, default=os.cpu_count() or 1, help="CPUs the node offers"
    )
    parser.add_argument("--memory-mb", type=int, default=node_memory_mb(), help="memory it offers")
    parser.add_argument("--gpus", type=int, default=0, help="GPUs it advertises (no devices)")
    args = parser.parse_args(argv)
    cluster = SlurmCluster(args.root, cpus=args.cpus, memory_mb=args.memory_mb, gpus=args.gpus)
    if args.action == "start":
        install_slurm()
        cluster.start()
        print(f"export SLURM_CONF={cluster.conf}  # partition: {PARTITION}")
    else:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
