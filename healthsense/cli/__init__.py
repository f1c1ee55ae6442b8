"""The ``healthsense`` command line: one entry point, one module per sub-command group.

Each sub-command module (``ppg``, ``retino``, ``kc``, ``screen``, ``demo``, ``sys_info``)
exposes ``add_arguments(parser)`` and ``run(args) -> int``; its module docstring is its help
text (first line: the one-line summary). Modules stay thin: parse, call the library, print or
write. Heavy imports happen inside ``run`` so that ``healthsense --help`` stays fast.
"""
