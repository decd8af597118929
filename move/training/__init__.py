"""Stage 4, training and evaluation: MOVE and the baselines as registered methods, one loop.

Modules: ``settings`` (TrainSettings, ModelSettings, Table 4's rows: plain data), ``registry``
(what a method is, its storage), ``methods`` (one file per built-in method, plugins through
entry points, the registry's queries), ``model`` / ``vicinity`` / ``losses`` / ``metrics`` (the
maths), ``data`` and ``loading`` (split, loaders), ``context`` (what hooks receive), ``loop``
(train), ``evaluation``, ``results`` (results JSON, no torch), ``artefacts`` (checkpoint,
progress), ``commands`` (what ``move train`` / ``move evaluate`` run). Import what you need from
the submodules; this package imports nothing.
"""
