"""Config loading (YAML + inheritance), validation, and the mapping onto ms-swift's argument objects."""
from .errors import ConfigError
from .loader import LoadedConfig, load_config
from .validate import ProjectConfig, check_inputs_exist, validate

__all__ = [
    'ConfigError', 'LoadedConfig', 'ProjectConfig', 'check_inputs_exist', 'load_config', 'load_and_validate', 'validate'
]


def load_and_validate(path, base_config=None) -> ProjectConfig:
    """Load ``path`` (and its parents) and validate it; raises ``ConfigError`` listing every problem."""
    return validate(load_config(path, base_config))
