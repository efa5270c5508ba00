"""Build-time tools: assemble `spec/` from upstream, regenerate `generated/` from `spec/`."""
