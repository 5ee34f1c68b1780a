#!/usr/bin/env python3
"""Writes the seed corpora of the loaders' fuzz harnesses (see README.md here): a few small
valid files of each format and the crafted inputs of issue 17 that once got through (signed
overflow on header sizes, trailing content after a JSON value, a byte-order mark, empty, null
or binary tokenizer files, non-finite adapter scales, control characters in names).

tests/test_bad_input.c replays every crafted file with the refusal it expects, so a file
renamed or dropped here must be renamed or dropped there too. Run from anywhere:

    python3 tests/fuzz/make_corpus.py
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
INT_MIN, INT64_MAX = -(2**31), 2**63 - 1


def write(folder, name, data):
    path = os.path.join(HERE, folder)
    os.makedirs(path, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(path, name), 'wb') as f:
        f.write(data)


# ---- llama2.c checkpoints (formats/llama2c.c) ------------------------------------------------
# A tiny model: dim 8, hidden 16, 1 layer, 2 heads (head size 4), vocab 4, seq_len 4.
DIM, HIDDEN, LAYERS, HEADS, KV, VOCAB, SEQ = 8, 16, 1, 2, 2, 4, 4


def param_counts(shared):
    C, H, L, V, KVD = DIM, HIDDEN, LAYERS, VOCAB, KV * (DIM // HEADS)
    return {'emb': V * C, 'rms_att': L * C, 'wq': L * C * C, 'wk': L * KVD * C,
            'wv': L * KVD * C, 'wo': L * C * C, 'rms_ffn': L * C, 'w1': L * H * C,
            'w2': L * C * H, 'w3': L * H * C, 'rms_final': C, 'wcls': 0 if shared else V * C}


def floats(n, start=0.0):
    return struct.pack(f'<{n}f', *[start + 0.01 * i for i in range(n)])


def llama2c_v0(vocab_field=VOCAB):
    header = struct.pack('<7i', DIM, HIDDEN, LAYERS, HEADS, KV, vocab_field, SEQ)
    counts = param_counts(vocab_field > 0)
    before = sum(v for k, v in counts.items() if k != 'wcls')
    rope = SEQ * (DIM // HEADS // 2) * 2
    return header + floats(before) + floats(rope) + floats(counts['wcls'])


def llama2c_v12(version, group=8, shared=True, fields=None):
    fields = fields or [DIM, HIDDEN, LAYERS, HEADS, KV, VOCAB, SEQ]
    header = struct.pack('<Ii7iB', 0x616b3432, version, *fields, 1 if shared else 0)
    if version == 2:
        header += struct.pack('<i', group)
    header += bytes(256 - len(header))
    c = param_counts(shared)
    norms = floats(c['rms_att'] + c['rms_ffn'] + c['rms_final'], 1.0)
    matrices = sum(c[k] for k in ('emb', 'wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3', 'wcls'))
    if version == 1:
        return header + norms + floats(matrices)
    q = bytes((i * 7) % 256 for i in range(matrices))
    return header + norms + q + (floats(matrices // group, 0.001) if group > 0 else b'')


write('corpus_llama2c', 'valid_v0.bin', llama2c_v0())
write('corpus_llama2c', 'valid_v0_unshared.bin', llama2c_v0(-VOCAB))
write('corpus_llama2c', 'valid_v1.bin', llama2c_v12(1))
write('corpus_llama2c', 'valid_v2.bin', llama2c_v12(2, group=8, shared=False))
# UBSan: negating INT_MIN (the "not shared" sign of vocab_size) overflowed
write('corpus_llama2c', 'vocab_int_min.bin', struct.pack('<7i', DIM, HIDDEN, LAYERS, HEADS, KV,
                                                         INT_MIN, SEQ))
write('corpus_llama2c', 'group_int_min.bin', llama2c_v12(2, group=INT_MIN))
write('corpus_llama2c', 'huge_dims.bin', llama2c_v12(1, fields=[65536, 262144, 1024, 2, 2,
                                                                 4194304, 1048576])[:256])

# ---- config.json (formats/hf_config.c) -------------------------------------------------------
CONFIG = {'architectures': ['LlamaForCausalLM'], 'hidden_size': 64, 'intermediate_size': 128,
          'num_hidden_layers': 2, 'num_attention_heads': 8, 'num_key_value_heads': 4,
          'vocab_size': 100, 'max_position_embeddings': 256, 'rms_norm_eps': 1e-5,
          'bos_token_id': 1, 'eos_token_id': 2, 'tie_word_embeddings': False}
write('corpus_hf_config', 'valid.json', json.dumps(CONFIG, indent=2))
write('corpus_hf_config', 'bom.json', '\ufeff' + json.dumps(CONFIG))
# head_dim * num_attention_heads = 536870920 * 8 wraps to 64 in int and passed the check
write('corpus_hf_config', 'head_dim_wraps.json', json.dumps(dict(CONFIG, head_dim=536870920)))
write('corpus_hf_config', 'trailing_object.json', json.dumps(CONFIG) + '\n' + json.dumps(CONFIG))
write('corpus_hf_config', 'trailing_garbage.json', json.dumps(CONFIG) + ' x')
write('corpus_hf_config', 'bos_1e50.json', json.dumps(dict(CONFIG, bos_token_id=1e50)))

# ---- tokenizer files by content (tokenizer/tokenizer.c: tokenizer_load) -----------------------
SMALL = {
    'version': '1.0', 'truncation': None, 'padding': None,
    'added_tokens': [{'id': i, 'content': c, 'single_word': False, 'lstrip': False,
                      'rstrip': False, 'normalized': False, 'special': True}
                     for i, c in enumerate(['<unk>', '<s>', '</s>'])],
    'normalizer': None,
    'pre_tokenizer': {'type': 'Metaspace', 'replacement': '\u2581', 'prepend_scheme': 'first',
                      'split': True},
    'post_processor': None,
    'decoder': {'type': 'Metaspace', 'replacement': '\u2581', 'prepend_scheme': 'first',
                'split': True},
    'model': {'type': 'BPE', 'dropout': None, 'unk_token': '<unk>',
              'continuing_subword_prefix': None, 'end_of_word_suffix': None, 'fuse_unk': False,
              'byte_fallback': True, 'ignore_merges': False,
              'vocab': {'<unk>': 0, '<s>': 1, '</s>': 2, '<0xC3>': 3, '<0xA9>': 4, '\u2581': 5,
                        'a': 6, 'b': 7, 'c': 8, 't': 9, '\u2581c': 10, 'at': 11, '\u2581cat': 12},
              'merges': ['\u2581 c', 'a t', '\u2581c at']}}
small = json.dumps(SMALL, ensure_ascii=False, indent=1)
write('corpus_tokenizer', 'small.json', small)
write('corpus_tokenizer', 'bom.json', '\ufeff' + small)  # valid input: the BOM is skipped
write('corpus_tokenizer', 'empty.json', '')
write('corpus_tokenizer', 'null.json', 'null\n')
write('corpus_tokenizer', 'array.json', ' [1, 2]')
write('corpus_tokenizer', 'binary.json', bytes(range(0x80, 0x100)) * 2)
write('corpus_tokenizer', 'trailing.json', small + '\n{}\n')


def tokenizer_bin(pieces, max_len=None):
    out = struct.pack('<i', max_len if max_len is not None else max(len(p) for p in pieces))
    for i, p in enumerate(pieces):
        out += struct.pack('<fi', -float(i) if i > 258 else 0.0, len(p)) + p
    return out


PIECES = [b'<unk>', b'\n<s>\n', b'\n</s>\n'] + [b'<0x%02X>' % b for b in range(256)] + \
    [b' ', b'a', b't', b' a', b'at', b' at', b' c', b'c']
write('corpus_tokenizer', 'small.bin', tokenizer_bin(PIECES))
write('corpus_tokenizer', 'one_record.bin', tokenizer_bin([b'<unk>']))
write('corpus_tokenizer', 'cut_record.bin', tokenizer_bin(PIECES)[:95])

# ---- adapter_config.json (formats/peft.c) ----------------------------------------------------
ADAPTER = {'peft_type': 'LORA', 'task_type': 'CAUSAL_LM', 'base_model_name_or_path': '',
           'r': 4, 'lora_alpha': 8, 'lora_dropout': 0.05,
           'target_modules': ['q_proj', 'v_proj'], 'bias': 'none', 'fan_in_fan_out': False,
           'use_rslora': False, 'use_dora': False, 'modules_to_save': None}
write('corpus_peft_config', 'valid.json', json.dumps(ADAPTER, indent=2))
write('corpus_peft_config', 'alpha_1e39.json', json.dumps(dict(ADAPTER, lora_alpha=1e39)))
write('corpus_peft_config', 'alpha_1e308.json', json.dumps(dict(ADAPTER, lora_alpha=1e308)))
write('corpus_peft_config', 'dropout_1e39.json', json.dumps(dict(ADAPTER, lora_dropout=1e39)))
write('corpus_peft_config', 'rank_fraction.json', json.dumps(dict(ADAPTER, r=2.5)))
write('corpus_peft_config', 'rank_1e10.json', json.dumps(dict(ADAPTER, r=1e10)))
write('corpus_peft_config', 'trailing.json', json.dumps(ADAPTER) + ']')
# found by fuzz_peft_config: an empty list was accepted, refused later without the field's name
write('corpus_peft_config', 'targets_empty.json', json.dumps(dict(ADAPTER, target_modules=[])))

# ---- train state (train/train_state.c) -------------------------------------------------------
# Saved for the layout the harness and the test use: fingerprint LAYOUT_HASH, 8 floats.
LAYOUT_HASH, N = 0x6375746B69742121, 8


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def train_state(step=10, epoch=1, opt_step=10, cursor=(1, 2), warmup=0, total=100):
    desc = b'fuzz layout'
    body = struct.pack('<QQqq', LAYOUT_HASH, N, step, epoch)
    body += struct.pack('<IIdqqd', 2, 1, 1e-3, warmup, total, 0.5)  # linear schedule
    body += struct.pack('<ddddq', 0.9, 0.999, 1e-8, 0.01, opt_step)
    body += struct.pack('<IIII', len(desc), 1, 1, len(cursor))
    body += desc + bytes(-len(desc) % 8)
    body += struct.pack('<QQQ', 0, N, 1)
    body += struct.pack('<4Q', 1, 2, 3, 4)
    body += struct.pack(f'<{len(cursor)}q', *cursor)
    body += floats(N, 0.5) + floats(N, 0.25)
    total_size = 32 + len(body)
    return b'CKTSTATE' + struct.pack('<IIQQ', 1, 0, total_size, fnv1a64(body)) + body


write('corpus_train_state', 'valid.state', train_state())
# UBSan: AdamW's step counter incremented past INT64_MAX (optim.c)
write('corpus_train_state', 'opt_step_max.state', train_state(opt_step=INT64_MAX))
write('corpus_train_state', 'step_max.state', train_state(step=INT64_MAX))
# UBSan: the data cursor's epoch + 1 overflowed in the shuffle's seed (corpus.c)
write('corpus_train_state', 'cursor_epoch_max.state', train_state(cursor=(INT64_MAX, 0)))
write('corpus_train_state', 'total_steps_max.state', train_state(total=INT64_MAX))
write('corpus_train_state', 'bad_checksum.state', train_state()[:-1] + b'\x01')

# ---- training JSONL (datasets/corpus.c) -------------------------------------------------------
# The harness loads every input both ways, as JSON Lines and as plain text.
write('corpus_jsonl', 'valid.jsonl', '{"text": "a cat"}\n\n{"prompt": "a", "response": "cat"}\n')
write('corpus_jsonl', 'text.txt', 'a cat at a cat\n')
write('corpus_jsonl', 'trailing.jsonl', '{"text": "a"}\n{"text": "b"} {"text": "c"}\n')
write('corpus_jsonl', 'not_object.jsonl', '{"text": "a"}\n[1]\n')

# ---- AlpacaEval annotations and model outputs (eval/annotations.c, eval/outputs.c) -----------
ANN = [{'instruction': 'say hi', 'output_1': 'hi', 'generator_1': 'base', 'output_2': 'hello',
        'generator_2': 'model', 'annotator': 'cutkit', 'preference': 2.0},
       {'instruction': 'count', 'output_1': '1 2 3', 'generator_1': 'base', 'output_2': '123',
        'generator_2': 'model', 'annotator': 'cutkit', 'preference': 1.0},
       {'instruction': 'again', 'output_1': 'a', 'output_2': 'bb', 'generator_2': 'model',
        'preference': 1.5}]
write('corpus_alpaca_eval', 'annotations.json', json.dumps(ANN, indent=2))
write('corpus_alpaca_eval', 'annotations_trailing.json', json.dumps(ANN) + json.dumps(ANN))
# escape sequences in a name: retitle the window, red text, a bidi override
evil = [dict(a, generator_2='evil\x1b]0;owned\x07\x1b[31mred\u202e', annotator='x\ry')
        for a in ANN]
write('corpus_alpaca_eval', 'annotations_escapes.json', json.dumps(evil))
write('corpus_alpaca_eval', 'annotations_odd_preferences.json',
      json.dumps([dict(ANN[0], preference=p) for p in (1e308, -1, 0, 3, 1.999999)]))
OUT = [{'instruction': 'say hi', 'output': 'hello', 'generator': 'model', 'dataset': 'x'},
       {'instruction': 'count', 'input': '1 to 3', 'output': '123'}, 'a bare instruction']
write('corpus_alpaca_eval', 'outputs.json', json.dumps(OUT, indent=2))
write('corpus_alpaca_eval', 'outputs_trailing.json', json.dumps(OUT) + '\n[]')
