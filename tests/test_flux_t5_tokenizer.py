"""The T5 v1.1 tokenizer shipped in assets/model_configs/flux/tokenizer_2: transformers loads it with the hub
switched off, and it gives the ids the real T5 tokenizer gives (recorded by other projects from t5-small/t5-base,
which share T5 v1.1's SentencePiece vocabulary)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from trainer.models.flux_single_file import T5_TOKENIZER

# text -> ids from the real tokenizer: HF transformers' T5 docs and ColossalAI's T5 test data (first two),
# Bumblebee's T5 tokenizer test, and two .NET tokenizer tests against the Hub's T5 files.
REFERENCE = {
    "translate English to German: The house is wonderful.": [13959, 1566, 12, 2968, 10, 37, 629, 19, 1627, 5, 1],
    "Das Haus ist wunderbar.": [644, 4598, 229, 19250, 5, 1],
    "translate English to German: How old are you?": [13959, 1566, 12, 2968, 10, 571, 625, 33, 25, 58, 1],
    "translate English to German: Hello world": [13959, 1566, 12, 2968, 10, 8774, 296, 1],
    "translate English to German: Hello, how are you?": [13959, 1566, 12, 2968, 10, 8774, 6, 149, 33, 25, 58, 1],
}
LOAD = """
import json, sys
from transformers import AutoTokenizer, T5TokenizerFast
texts = json.loads(sys.argv[2])
out = {}
for cls in (T5TokenizerFast, AutoTokenizer):
    tok = cls.from_pretrained(sys.argv[1])
    out[cls.__name__] = {"ids": [tok(t).input_ids for t in texts], "size": len(tok), "pad": tok.pad_token_id,
                         "eos": tok.eos_token_id, "max": tok.model_max_length,
                         "padded": tok("zk", padding="max_length", max_length=8).input_ids}
print(json.dumps(out))
"""


def test_transformers_loads_the_shipped_tokenizer_offline_with_the_real_t5_ids():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    done = subprocess.run([sys.executable, "-c", LOAD, str(T5_TOKENIZER), json.dumps(list(REFERENCE))], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for name, got in results.items():
        assert got["ids"] == list(REFERENCE.values()), name
        assert (got["size"], got["pad"], got["eos"], got["max"]) == (32100, 0, 1, 512), name
        assert got["padded"] == [3, 172, 157, 1, 0, 0, 0, 0], name  # "zk" -> ▁ z k </s>, then <pad> (id 0)


def test_the_readme_names_the_shipped_file_by_its_hash():
    digest = hashlib.sha256((T5_TOKENIZER / "tokenizer.json").read_bytes()).hexdigest()
    readme = (T5_TOKENIZER / "README.md").read_text(encoding="utf-8")
    assert digest in readme and "Apache License 2.0" in readme


@pytest.mark.parametrize("text", ["a photo of zk, smiling", "Ünïcödé and  two  spaces"])
def test_the_tokenizers_library_reads_the_same_file_to_the_same_ids(text):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    raw = Tokenizer.from_file(str(T5_TOKENIZER / "tokenizer.json"))
    assert raw.encode(text).ids == AutoTokenizer.from_pretrained(T5_TOKENIZER)(text).input_ids
