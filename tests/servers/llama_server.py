"""Serve a GGUF model over llama.cpp's real HTTP server (xllamacpp): the OpenAI-compatible routes
(/v1/chat/completions, /v1/embeddings) and Anthropic's Messages API (/v1/messages).

Usage: python llama_server.py MODEL_PATH PORT [--embeddings] [--chat-template FILE] [--grammar GBNF] [--mmproj FILE].
Runs until killed or stdin closes. With --embeddings it serves /v1/embeddings (mean pooling) instead of
chat; --chat-template renders prompts with a Jinja template file (llama.cpp then parses answers in that
template's format: reasoning, tool calls); --grammar constrains every answer that sets no grammar itself;
--mmproj loads a multimodal projector, so the chat routes take images.
"""

import sys
from pathlib import Path

import xllamacpp


def main() -> None:
    model_path, port = sys.argv[1], int(sys.argv[2])
    params = xllamacpp.CommonParams()
    params.model.path = model_path
    params.n_ctx = 4096
    params.n_parallel = 4
    params.n_predict = 256  # a server-side default answer length, as hosted services have one
    params.cpuparams.n_threads = 2
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.verbosity = -1
    if "--chat-template" in sys.argv:
        params.use_jinja = True
        params.chat_template = Path(sys.argv[sys.argv.index("--chat-template") + 1]).read_text()
    if "--grammar" in sys.argv:
        grammar = sys.argv[sys.argv.index("--grammar") + 1]
        params.sampling.grammar = xllamacpp.CommonGrammar(xllamacpp.common_grammar_type.COMMON_GRAMMAR_TYPE_USER, grammar)
    if "--mmproj" in sys.argv:
        params.mmproj.path = sys.argv[sys.argv.index("--mmproj") + 1]
    if "--embeddings" in sys.argv:
        params.embedding = True
        params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
    server = xllamacpp.Server(params)
    print(f"listening {server.listening_address}", flush=True)
    sys.stdin.read()  # the parent closes stdin (or kills us) to stop the server


if __name__ == "__main__":
    main()
