"""What syncs, field by field: the mapping file's schema (`model`), its interpreter
(`mapper`, `transforms`) and the default file (`mapping.yaml`).

The mapping is the contract between the worker and the writers: both read records
through the same canonical field names, so it lives with the rest of the contract.
"""

from schemas.keys import KeyNormalizer
from schemas.mapping.mapper import Canonical, FlowMapper
from schemas.mapping.model import (
    DEFAULT_MAPPING,
    Direction,
    FieldMap,
    Flow,
    KeySpec,
    MappingError,
    MappingFile,
    Transform,
    load_mapping,
    parse_path,
)
from schemas.mapping.transforms import TransformError

__all__ = [
    "DEFAULT_MAPPING",
    "Canonical",
    "Direction",
    "FieldMap",
    "Flow",
    "FlowMapper",
    "KeyNormalizer",
    "KeySpec",
    "MappingError",
    "MappingFile",
    "Transform",
    "TransformError",
    "load_mapping",
    "parse_path",
]
