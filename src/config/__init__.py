"""Config loading (YAML + inheritance), validation, and the typed config every other layer reads.

``loader``/``yaml_file`` read the layered YAML; ``validate`` checks it (with ``schema``, ``bounds``, ``values`` and the
section parsers ``augmentation``, ``video``, ``visual_kd``, ``fusion``, ``rlhf``) and lifts the project's own keys out
of ms-swift's sections into ``project.ProjectConfig``: typed fields (``settings``, ``gkd``, the parsed sections) and,
per section, only the keyword arguments ms-swift's argument objects take (``ProjectConfig.swift_kwargs``). Nothing
here imports from the rest of ``src``.
"""
from .errors import ConfigError
from .loader import LoadedConfig, load_config
from .project import ProjectConfig
from .validate import check_inputs_exist, validate

__all__ = [
    'ConfigError', 'LoadedConfig', 'ProjectConfig', 'check_inputs_exist', 'load_config', 'load_and_validate', 'validate'
]


def load_and_validate(path, base_config=None) -> ProjectConfig:
    """Load ``path`` (and its parents) and validate it; raises ``ConfigError`` listing every problem."""
    return validate(load_config(path, base_config))
