"""SpecTran and its neighbours: LLM text embeddings as item tables for sequential recommenders."""
__version__ = "0.1.0"

from .config import Config, PROFILES  # noqa: E402
from .data import load_dataset  # noqa: E402

__all__ = ["Config", "PROFILES", "load_dataset", "__version__"]
