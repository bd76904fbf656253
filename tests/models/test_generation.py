"""generate() and the key/value cache without a reference framework: one buffer per layer sized for the
final length, one token per decode step (the prefix is never recomputed), the cache and no-cache paths
agree, and sampling (temperature, top-k, top-p) follows the distributions it should, repeatably under
pyfastnn.manual_seed. transformers' logits warpers are the reference for the filtering when installed."""
import numpy as np
import pytest

import pyfastnn
from pyfastnn import models
from pyfastnn.models import generation


@pytest.fixture(scope="module")
def lm():
    pyfastnn.manual_seed(0)
    config = models.GPT2Config(vocab_size=61, n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=60,
                               eos_token_id=60, initializer_range=0.2)
    return models.GPT2LMHeadModel(config).eval()


def test_cache_is_one_buffer_per_layer_and_decode_feeds_one_token(lm, monkeypatch):
    caches, lengths = [], []
    make = lm._new_cache

    def spy_cache(max_length):
        caches.append(make(max_length))
        return caches[-1]
    forward = type(lm).forward

    def spy_forward(self, input_ids=None, **kw):
        lengths.append(np.shape(input_ids)[1])
        return forward(self, input_ids, **kw)
    monkeypatch.setattr(lm, "_new_cache", spy_cache)
    monkeypatch.setattr(type(lm), "forward", spy_forward)
    prompt = np.random.RandomState(0).randint(0, 60, (2, 7))
    out = lm.generate(prompt, max_new_tokens=9, eos_token_id=None)
    assert out.shape == (2, 16)
    assert lengths == [7] + [1] * 8                      # the prompt once, then one token per step
    cache = caches[0]
    assert len(cache) == 2 and cache.get_seq_length() == 15
    assert all(k.shape == (2, 4, 16, 8) for k in cache._keys)     # allocated once for the final length
    lengths.clear()
    lm.generate(prompt, max_new_tokens=4, eos_token_id=None, use_cache=False)
    assert lengths == [7, 8, 9, 10]                     # use_cache=False recomputes the whole sequence


def test_kv_cache_grows_in_place_and_by_doubling():
    cache = models.KVCache(max_length=6)
    k = pyfastnn.randn(1, 2, 4, 3)
    keys, values = cache.update(k, k * 2, 0)
    assert keys is k                                     # the first update returns its own tensors
    buffer = cache._keys[0]
    keys, values = cache.update(pyfastnn.randn(1, 2, 2, 3), pyfastnn.randn(1, 2, 2, 3), 0)
    assert cache._keys[0] is buffer and keys.shape == (1, 2, 6, 3)
    np.testing.assert_array_equal(keys.numpy()[:, :, :4], k.numpy())
    cache.update(pyfastnn.randn(1, 2, 1, 3), pyfastnn.randn(1, 2, 1, 3), 0)      # past max_length: grows
    assert cache._keys[0].shape[2] == 12 and cache.get_seq_length() == 7
    np.testing.assert_array_equal(cache[0][0].numpy()[:, :, :4], k.numpy())
    with pytest.raises(ValueError, match="KVCache.update: layer 0"):
        cache.update(pyfastnn.randn(2, 2, 1, 3), pyfastnn.randn(2, 2, 1, 3), 0)


def test_cached_and_uncached_generation_agree_with_left_padding(lm):
    rng = np.random.RandomState(1)
    prompt = rng.randint(0, 60, (3, 8))
    mask = np.ones_like(prompt)
    mask[0, :5] = 0
    mask[2, :1] = 0
    a = lm.generate(prompt, attention_mask=mask, max_new_tokens=12, pad_token_id=0, eos_token_id=None)
    b = lm.generate(prompt, attention_mask=mask, max_new_tokens=12, pad_token_id=0, eos_token_id=None,
                    use_cache=False)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    # a left-padded prompt continues as the same prompt without padding does
    alone = lm.generate(prompt[0:1, 5:], max_new_tokens=12, eos_token_id=None)
    np.testing.assert_array_equal(a.numpy()[0, 8:], alone.numpy()[0, 3:])


def test_sampling_is_seeded_by_manual_seed(lm):
    prompt = np.random.RandomState(2).randint(0, 60, (2, 4))
    pyfastnn.manual_seed(123)
    a = lm.generate(prompt, do_sample=True, max_new_tokens=20, eos_token_id=None).numpy()
    pyfastnn.manual_seed(123)
    b = lm.generate(prompt, do_sample=True, max_new_tokens=20, eos_token_id=None).numpy()
    pyfastnn.manual_seed(124)
    c = lm.generate(prompt, do_sample=True, max_new_tokens=20, eos_token_id=None).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_degenerate_sampling_is_greedy(lm):
    prompt = np.random.RandomState(3).randint(0, 60, (2, 5))
    greedy = lm.generate(prompt, max_new_tokens=10, eos_token_id=None).numpy()
    for kw in ({"top_k": 1}, {"top_p": 1e-9}, {"temperature": 1e-4}):
        sampled = lm.generate(prompt, do_sample=True, max_new_tokens=10, eos_token_id=None, **kw).numpy()
        np.testing.assert_array_equal(sampled, greedy, err_msg=str(kw))


def test_first_token_frequencies_follow_the_filtered_softmax(lm):
    prompt = np.tile(np.array([[5, 17, 42]]), (3000, 1))
    logits = lm(prompt[:1]).logits.numpy()[0, -1].astype(np.float64)
    pyfastnn.manual_seed(7)
    for kw in ({}, {"temperature": 0.7, "top_k": 5}, {"top_p": 0.5}):
        first = lm.generate(prompt, do_sample=True, max_new_tokens=1, eos_token_id=None, **kw).numpy()[:, -1]
        expected = generation._softmax(generation._warp(logits[None], kw.get("temperature", 1.0), kw.get("top_k"),
                                                        kw.get("top_p")).astype(np.float64))[0]
        counts = np.bincount(first, minlength=61) / len(first)
        assert set(np.flatnonzero(counts)) <= set(np.flatnonzero(expected)), kw
        assert np.abs(counts - expected).max() < 0.04, kw         # 3000 draws: ~4.5 standard errors at p=0.5


def test_filtering_matches_transformers_warpers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    scores = np.random.RandomState(4).randn(4, 50).astype(np.float32) * 3
    for temperature, top_k, top_p in ((1.0, 5, None), (0.5, None, 0.8), (1.3, 10, 0.3), (1.0, None, 0.999)):
        ref = torch.from_numpy(scores.copy())
        if temperature != 1.0:
            ref = transformers.TemperatureLogitsWarper(temperature)(None, ref)
        if top_k is not None:
            ref = transformers.TopKLogitsWarper(top_k)(None, ref)
        if top_p is not None:
            ref = transformers.TopPLogitsWarper(top_p)(None, ref)
        ours = generation._warp(scores, temperature, top_k, top_p)
        np.testing.assert_array_equal(np.isinf(ours), np.isinf(ref.numpy()))
        kept = ~np.isinf(ours)
        np.testing.assert_allclose(ours[kept], ref.numpy()[kept], rtol=1e-6)


def test_generate_stops_when_every_row_has_finished(lm):
    prompt = np.random.RandomState(5).randint(0, 60, (1, 4))
    greedy = lm.generate(prompt, max_new_tokens=10, eos_token_id=None).numpy()
    eos = int(greedy[0, 6])
    out = lm.generate(prompt, max_new_tokens=10, eos_token_id=[eos, 59]).numpy()
    stop = 4 + list(greedy[0, 4:]).index(eos) + 1
    np.testing.assert_array_equal(out, greedy[:, :stop])
    assert lm.generate(prompt, max_new_tokens=0).shape == (1, 4)
    assert lm.generate(prompt, max_length=9, eos_token_id=None).shape == (1, 9)
