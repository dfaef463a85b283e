"""The synthetic county: a plausible human services system with a known history, written as a canonical extract."""

from caretwin.synth.county import County, simulate_county
from caretwin.synth.extract import ExtractResult, write_extract
from caretwin.synth.params import CountyParams

__all__ = ["County", "CountyParams", "ExtractResult", "simulate_county", "write_extract"]
