"""The config: one typed schema (schema.py) and the one pass that reads and validates it (load.py)."""

from lwt.config.load import (
    check_name,
    check_stage_lists,
    flatten,
    load_config,
    load_yaml,
    parse_overrides,
    save_config,
    to_dict,
    with_overrides,
)
from lwt.config.schema import (
    SECTIONS,
    AnalysisConfig,
    AuxConfig,
    Config,
    CurriculumConfig,
    DataConfig,
    FinetuneConfig,
    LoggingConfig,
    ModelConfig,
    OptimConfig,
    TrainerConfig,
    field_of,
    identity_differences,
    is_identity,
    schema_lines,
)

__all__ = ["SECTIONS", "AnalysisConfig", "AuxConfig", "Config", "CurriculumConfig", "DataConfig", "FinetuneConfig",
           "LoggingConfig", "ModelConfig", "OptimConfig", "TrainerConfig", "check_name", "check_stage_lists",
           "field_of", "flatten", "identity_differences", "is_identity", "load_config", "load_yaml",
           "parse_overrides", "save_config", "schema_lines", "to_dict", "with_overrides"]
