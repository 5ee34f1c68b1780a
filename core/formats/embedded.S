/* embedded.S — the default model (stories260K) and its tokenizer (tok512), linked into
 * the binary as raw bytes. The paths come from model/CMakeLists.txt. MIT licence:
 * core/formats/data/LICENSE-llama2.c.txt. (Not for clang-format: it is assembly.) */
    .section .rodata
    .balign 64
    .global ck_embedded_model_start
    .global ck_embedded_model_end
ck_embedded_model_start:
    .incbin CK_EMBED_MODEL
ck_embedded_model_end:
    .balign 64
    .global ck_embedded_tokenizer_start
    .global ck_embedded_tokenizer_end
ck_embedded_tokenizer_start:
    .incbin CK_EMBED_TOKENIZER
ck_embedded_tokenizer_end:
    .section .note.GNU-stack,"",@progbits
