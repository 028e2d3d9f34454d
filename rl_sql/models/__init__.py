"""Policies: tiny Llamas built from scratch (``tiny``), model folders and hub ids (``loading``),
and the supervised warm start (``sft``)."""
