"""caption.weighted_captions: A1111 attention syntax in captions scales the text encoder's hidden states of the
tokens it marks (SD1.5, and both SDXL encoders with the pooled output unweighted), as sd-scripts' training
does; the brackets never reach the tokenizer; long captions keep their weights across 75-token chunks."""

from __future__ import annotations

import pytest
import torch

from tests.engine_helpers import make_dataset, save_tiny_sd15, tiny_config
from trainer.config import check, config_from_dict
from trainer.engine.prompt_weights import parse_weights, weighted_ids
from trainer.engine.textenc import tokenize
from trainer.families import get_family
from trainer.models.tiny import build_tiny_sd15, build_tiny_sdxl


@pytest.fixture(scope="module")
def pipes():
    return {"sd15": build_tiny_sd15(seed=0), "sdxl": build_tiny_sdxl(seed=0)}


def _parts(pipe, family):
    if family == "sd15":
        return [pipe.text_encoder], [pipe.tokenizer]
    return [pipe.text_encoder, pipe.text_encoder_2], [pipe.tokenizer, pipe.tokenizer_2]


def _encode(pipes, family, caption, weighted, length=75):
    cfg = config_from_dict({"model": {"family": family},
                            "caption": {"weighted_captions": weighted, "max_token_length": length}})
    encoders, tokenizers = _parts(pipes[family], family)
    with torch.no_grad():
        return get_family(family).encode(encoders, tokenizers, [caption], cfg)


def test_attention_syntax_parses_as_in_a1111_and_sd_scripts():
    assert parse_weights("normal text") == [("normal text", 1.0)]
    assert parse_weights("an (important) word") == [("an ", 1.0), ("important", 1.1), (" word", 1.0)]
    assert parse_weights("[quiet] (loud:1.5)") == [("quiet", pytest.approx(1 / 1.1)), (" ", 1.0), ("loud", 1.5)]
    assert parse_weights(r"\(literal\] and \\") == [("(literal] and \\", 1.0)]
    assert parse_weights("(unclosed") == [("unclosed", 1.1)]
    got = parse_weights("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).")
    want = [("a ", 1.0), ("house", 1.573), (" ", 1.1), ("on", 1.0), (" a ", 1.1), ("hill", 0.55),
            (", sun, ", 1.1), ("sky", 1.4641), (".", 1.1)]
    assert [t for t, _ in got] == [t for t, _ in want]
    assert [w for _, w in got] == pytest.approx([w for _, w in want])


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_the_tokenizer_sees_the_text_without_brackets(pipes, family):
    tok = _parts(pipes[family], family)[1][-1]
    ids, weights = weighted_ids(tok, [r"(zk:1.5), [circle], \(x\)"], 75)
    assert torch.equal(ids, tokenize(tok, ["zk, circle, (x)"], 75)[:, 0])
    zk = len(tok("zk", add_special_tokens=False).input_ids)
    assert weights[0, 0] == 1.0 and torch.allclose(weights[0, 1:1 + zk], torch.tensor(1.5))


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_weight_one_everywhere_equals_the_unweighted_embedding(pipes, family):
    plain = _encode(pipes, family, "zk, circle, red", weighted=False)
    for text in ("zk, circle, red", "zk, (circle:1.0), red"):
        weighted = _encode(pipes, family, text, weighted=True)
        for key, value in plain.items():
            torch.testing.assert_close(weighted[key], value, rtol=0, atol=0)


@pytest.mark.parametrize(("family", "length"), [("sd15", 75), ("sdxl", 75), ("sd15", 225), ("sdxl", 225)])
def test_a_weight_scales_exactly_its_tokens_hidden_states(pipes, family, length):
    filler = "x " * 90 if length == 225 else ""  # pushes the weighted tag into the second 75-token chunk
    plain = _encode(pipes, family, f"{filler}zk circle", weighted=False, length=length)
    weighted = _encode(pipes, family, f"{filler}zk (circle:1.5)", weighted=True, length=length)
    tok = _parts(pipes[family], family)[1][0]
    start = 1 + len(tok(f"{filler}zk", add_special_tokens=False).input_ids)
    n = len(tok(" circle", add_special_tokens=False).input_ids)
    if length == 225:
        assert start > 76  # really in chunk 2
    hidden, base = weighted["hidden"], plain["hidden"]
    torch.testing.assert_close(hidden[:, start:start + n], base[:, start:start + n] * 1.5)
    torch.testing.assert_close(hidden[:, :start], base[:, :start], rtol=0, atol=0)
    torch.testing.assert_close(hidden[:, start + n:], base[:, start + n:], rtol=0, atol=0)
    if family == "sdxl":  # both encoders' halves are weighted; the pooled output is not
        torch.testing.assert_close(weighted["pooled"], plain["pooled"], rtol=0, atol=0)


def test_a_weighted_trigger_word_counts_as_present():
    from trainer.data.scan import ImageItem
    from trainer.engine.build import with_trigger

    items = [ImageItem("a.png", "(zk:1.3), red hair", 5, "5_zk", "zk", False, 64, 64)]
    assert with_trigger(items, "zk", weighted=True)[0].caption == "(zk:1.3), red hair"
    assert with_trigger(items, "zk")[0].caption == "zk, (zk:1.3), red hair"  # brackets are text without weighting


def test_cached_text_outputs_key_on_the_weighting():
    base = config_from_dict({"caption": {"max_token_length": 150}})
    weighted = config_from_dict({"caption": {"max_token_length": 150, "weighted_captions": True}})
    for family in ("sd15", "sdxl"):
        assert get_family(family).text_cache_key(base) != get_family(family).text_cache_key(weighted)


def test_weighted_captions_is_not_for_flux():
    cfg = config_from_dict({"model": {"family": "flux"}, "caption": {"weighted_captions": True}})
    assert "caption.weighted_captions" in {f.field for f in check(cfg, for_training=False) if f.level == "error"}


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_a_run_with_weighted_captions_trains(tmp_path, family, monkeypatch):
    from tests.engine_helpers import losses, save_tiny_sdxl
    from trainer.engine import prompt_weights
    from trainer.engine.run import train
    from trainer.networks.save import read_lora

    read = []  # the captions the run's encoding read weights from
    real = prompt_weights.weighted_ids
    monkeypatch.setattr(prompt_weights, "weighted_ids", lambda tok, caps, n: read.extend(caps) or real(tok, caps, n))

    data = make_dataset(tmp_path / "data", n=2)
    for i, caption in enumerate(sorted((data / "5_zk").glob("*.txt"))):
        caption.write_text(f"(zk:1.3), [circle], (colour {i})", encoding="utf-8")
    model = save_tiny_sd15(tmp_path / "sd15") if family == "sd15" else save_tiny_sdxl(tmp_path / "sdxl")
    cfg = tiny_config(model, data, model__family=family, caption__weighted_captions=True,
                      caption__max_token_length=150, caption__trigger_word="zk",
                      speed__cache_text_encoder_outputs=True,
                      training__network_train_unet_only=True, training__max_train_epochs=1)
    assert train(cfg, tmp_path / "run") == 0
    assert losses(tmp_path / "run") and all(torch.isfinite(torch.tensor(losses(tmp_path / "run"))))
    tensors, _ = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    assert tensors
    assert any(c.startswith("(zk:1.3), [circle]") for c in read)  # the weighted trigger word counts as present


def test_shuffling_with_weighted_captions_warns_about_commas_in_groups():
    def fields(**caption):
        cfg = config_from_dict({"caption": {"weighted_captions": True, **caption}})
        return {(f.field, f.level) for f in check(cfg, for_training=False)}

    assert ("caption.weighted_captions", "warning") in fields(shuffle_caption=True)
    assert ("caption.weighted_captions", "warning") in fields(caption_tag_dropout_rate=0.1)
    assert ("caption.weighted_captions", "warning") not in fields()
