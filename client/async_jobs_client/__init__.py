"""Client of the async-jobs API: submit (inline or through an upload), poll, cancel, retry."""

from .api import ApiError, JobsApi, Response
from .inputs import InputFile

__all__ = ["ApiError", "InputFile", "JobsApi", "Response"]
