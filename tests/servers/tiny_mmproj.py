"""Write a tiny multimodal projector with random weights (a CLIP-style vision encoder and an MLP projector, as
LLaVA's) for llama.cpp, so a text model such as SmolLM2 takes images for real: llama.cpp decodes each image,
encodes it and adds a fixed number of tokens to the prompt. The answers mean nothing; the path is real.

Usage: python tiny_mmproj.py OUT_PATH TEXT_EMBEDDING_LENGTH (SmolLM2-135M: 576).
"""

from __future__ import annotations

import sys

import gguf
import numpy as np

IMAGE_SIZE, PATCH_SIZE, WIDTH, HEADS, FFN, BLOCKS = 32, 16, 32, 2, 64, 1
TOKENS_PER_IMAGE = (IMAGE_SIZE // PATCH_SIZE) ** 2


def write(path: str, text_width: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)

    def weights(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    writer = gguf.GGUFWriter(path, "clip")
    writer.add_bool("clip.has_vision_encoder", True)
    writer.add_bool("clip.has_text_encoder", False)
    writer.add_string("clip.projector_type", "mlp")
    writer.add_bool("clip.use_gelu", True)
    writer.add_uint32("clip.vision.image_size", IMAGE_SIZE)
    writer.add_uint32("clip.vision.patch_size", PATCH_SIZE)
    writer.add_uint32("clip.vision.embedding_length", WIDTH)
    writer.add_uint32("clip.vision.feed_forward_length", FFN)
    writer.add_uint32("clip.vision.projection_dim", text_width)
    writer.add_uint32("clip.vision.block_count", BLOCKS)
    writer.add_uint32("clip.vision.attention.head_count", HEADS)
    writer.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    writer.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    writer.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])
    ones, zeros = np.ones(WIDTH, np.float32), np.zeros(WIDTH, np.float32)
    writer.add_tensor("v.patch_embd.weight", weights(WIDTH, 3, PATCH_SIZE, PATCH_SIZE))
    writer.add_tensor("v.class_embd", weights(WIDTH))
    writer.add_tensor("v.position_embd.weight", weights(TOKENS_PER_IMAGE + 1, WIDTH))
    writer.add_tensor("v.pre_ln.weight", ones)
    writer.add_tensor("v.pre_ln.bias", zeros)
    for block in range(BLOCKS):
        prefix = f"v.blk.{block}"
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            writer.add_tensor(f"{prefix}.{name}.weight", weights(WIDTH, WIDTH))
            writer.add_tensor(f"{prefix}.{name}.bias", zeros.copy())
        for name in ("ln1", "ln2"):
            writer.add_tensor(f"{prefix}.{name}.weight", ones.copy())
            writer.add_tensor(f"{prefix}.{name}.bias", zeros.copy())
        writer.add_tensor(f"{prefix}.ffn_up.weight", weights(FFN, WIDTH))
        writer.add_tensor(f"{prefix}.ffn_up.bias", np.zeros(FFN, np.float32))
        writer.add_tensor(f"{prefix}.ffn_down.weight", weights(WIDTH, FFN))
        writer.add_tensor(f"{prefix}.ffn_down.bias", zeros.copy())
    writer.add_tensor("mm.0.weight", weights(text_width, WIDTH))
    writer.add_tensor("mm.0.bias", np.zeros(text_width, np.float32))
    writer.add_tensor("mm.2.weight", weights(text_width, text_width))
    writer.add_tensor("mm.2.bias", np.zeros(text_width, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    write(sys.argv[1], int(sys.argv[2]))
