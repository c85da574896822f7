"""Attention layers and EinsumDense."""

import numpy as np

from engine._util import f32, impls


def _masked(rng, b, t, d, zero_steps):
    """Float sequences with some timesteps zeroed (a Masking layer turns them into a mask)."""
    x = f32(rng, b, t, d)
    for bi, ts in zero_steps:
        x[bi, ts, :] = 0.0
    return x


@impls("keras3", "tfkeras")
def case_attention_dot(K, impl, rng):
    """Attention: dot with use_scale, concat score mode, and [query, value, key] inputs."""
    L = K.layers
    q = K.Input((4, 6), name="q")
    v = K.Input((5, 6), name="v")
    k = K.Input((5, 6), name="k")
    a = L.Attention(use_scale=True, name="dot_scaled")([q, v])
    b = L.Attention(score_mode="concat", use_scale=True, name="concat")([q, v, k])
    c = L.Attention(name="plain")([q, v, k])
    m = K.Model([q, v, k], [a, b, c], name="attention_dot")
    return dict(model=m, inputs=[f32(rng, 2, 4, 6), f32(rng, 2, 5, 6), f32(rng, 2, 5, 6)],
                description="Attention dot (use_scale), concat (use_scale) with key, plain dot with key")


@impls("keras3", "tfkeras")
def case_attention_causal_masks(K, impl, rng):
    """Attention with Keras masks from Masking, use_causal_mask, and returned scores."""
    L = K.layers
    q = K.Input((4, 3), name="q")
    v = K.Input((4, 3), name="v")
    qm = L.Masking(name="qmask")(q)
    vm = L.Masking(name="vmask")(v)
    a = L.Attention(name="causal")([qm, vm], use_causal_mask=True)
    b, s = L.Attention(use_scale=True, name="scores")([qm, vm], return_attention_scores=True)
    c = L.AdditiveAttention(name="additive")([qm, vm])
    m = K.Model([q, v], [a, b, s, c], name="attention_causal_masks")
    x = _masked(rng, 2, 4, 3, [(0, 3), (1, 0)])
    y = _masked(rng, 2, 4, 3, [(0, 2), (1, 3)])
    return dict(model=m, inputs=[x, y],
                description="Attention causal + masks, scores returned, AdditiveAttention with masks")


@impls("keras3", "tfkeras")
def case_additive_attention_noscale(K, impl, rng):
    """AdditiveAttention(use_scale=False). (tf-keras 2.21 no longer serializes the old `causal`
    config key, so a `causal: true` config cannot be produced here; strata reads it anyway.)"""
    L = K.layers
    q = K.Input((4, 3), name="q")
    v = K.Input((5, 3), name="v")
    b = L.AdditiveAttention(use_scale=False, name="additive_noscale")([q, v])
    m = K.Model([q, v], b, name="additive_attention_noscale")
    return dict(model=m, inputs=[f32(rng, 2, 4, 3), f32(rng, 2, 5, 3)],
                description="AdditiveAttention without scale")


@impls("keras3", "tfkeras")
def case_additive_attention(K, impl, rng):
    """AdditiveAttention with a scale weight over [query, value, key]."""
    L = K.layers
    q = K.Input((3, 4), name="q")
    v = K.Input((5, 4), name="v")
    k = K.Input((5, 4), name="k")
    a = L.AdditiveAttention(name="additive")([q, v, k])
    m = K.Model([q, v, k], a, name="additive_attention")
    return dict(model=m, inputs=[f32(rng, 2, 3, 4), f32(rng, 2, 5, 4), f32(rng, 2, 5, 4)],
                description="AdditiveAttention(use_scale=True) with a separate key")


@impls("keras3", "tfkeras")
def case_mha_self_masked(K, impl, rng):
    """MultiHeadAttention self-attention with Masking masks and a causal mask."""
    L = K.layers
    x = K.Input((5, 4), name="x")
    # One Masking layer per MHA: Keras 3's MultiHeadAttention clears the Keras mask of the tensors
    # it is called on, so a second layer called on the same masked tensor may see no mask at all
    # (depending on execution order) -- a Keras quirk strata does not reproduce.
    h1 = L.Masking(name="mask1")(x)
    h2 = L.Masking(name="mask2")(x)
    y = L.MultiHeadAttention(num_heads=2, key_dim=3, name="mha_causal")(h1, h1, use_causal_mask=True)
    z = L.MultiHeadAttention(num_heads=3, key_dim=2, value_dim=4, name="mha_masked")(h2, h2)
    m = K.Model(x, [y, z], name="mha_self_masked")
    return dict(model=m, inputs=[_masked(rng, 2, 5, 4, [(0, 4), (1, 3), (1, 4)])],
                description="MHA self-attention: causal + padding masks; value_dim != key_dim")


@impls("keras3", "tfkeras")
def case_mha_cross(K, impl, rng):
    """MultiHeadAttention cross-attention with a key, output_shape, no bias, scores returned."""
    L = K.layers
    q = K.Input((3, 4), name="q")
    v = K.Input((5, 6), name="v")
    k = K.Input((5, 2), name="k")
    a = L.MultiHeadAttention(num_heads=2, key_dim=3, output_shape=(7,), use_bias=False, name="mha_key")(q, v, k)
    b, s = L.MultiHeadAttention(num_heads=2, key_dim=2, name="mha_scores")(q, v, return_attention_scores=True)
    m = K.Model([q, v, k], [a, b, s], name="mha_cross")
    return dict(model=m, inputs=[f32(rng, 2, 3, 4), f32(rng, 2, 5, 6), f32(rng, 2, 5, 2)],
                description="MHA cross-attention with key, output_shape, use_bias=False; scores returned")


@impls("keras3", "tfkeras")
def case_mha_attention_axes(K, impl, rng):
    """MultiHeadAttention over two attention axes of a rank-4 input."""
    L = K.layers
    x = K.Input((3, 2, 4), name="x")
    a = L.MultiHeadAttention(num_heads=2, key_dim=2, attention_axes=(1, 2), name="mha_2d")(x, x)
    b = L.MultiHeadAttention(num_heads=1, key_dim=3, attention_axes=(2,), name="mha_axis2")(x, x)
    m = K.Model(x, [a, b], name="mha_attention_axes")
    return dict(model=m, inputs=[f32(rng, 2, 3, 2, 4)], description="MHA attention_axes=(1, 2) and (2,)")


@impls("keras3", "tfkeras")
def case_einsum_dense(K, impl, rng):
    """EinsumDense with several equations, bias axes and an activation."""
    L = K.layers
    if impl == "tfkeras":
        ED = L.EinsumDense if hasattr(L, "EinsumDense") else L.experimental.EinsumDense
    else:
        ED = L.EinsumDense
    x = K.Input((3, 4), name="x")
    a = ED("abc,cd->abd", output_shape=(None, 5), bias_axes="d", name="dense_like")(x)
    b = ED("abc,cde->abde", output_shape=(None, 2, 3), bias_axes="de", activation="relu", name="heads")(x)
    c = ED("...b,bc->...c", output_shape=6, bias_axes="c", name="ellipsis")(x)
    d = ED("abc,bd->adc", output_shape=(2, 4), name="time_mix")(x)
    e = ED("abc,cb->ab", output_shape=3, bias_axes="b", name="diag_free")(x)
    m = K.Model(x, [a, b, c, d, e], name="einsum_dense")
    return dict(model=m, inputs=[f32(rng, 2, 3, 4)], description="EinsumDense equations incl. ellipsis")


@impls("keras3", "tfkeras")
def case_mha_attention_mask(K, impl, rng):
    """MultiHeadAttention with an explicit attention_mask tensor passed by keyword."""
    L = K.layers
    q = K.Input((3, 4), name="q")
    v = K.Input((5, 4), name="v")
    am = K.Input((3, 5), name="am")
    a = L.MultiHeadAttention(num_heads=2, key_dim=2, name="mha_am")(q, v, attention_mask=am)
    m = K.Model([q, v, am], a, name="mha_attention_mask")
    mask = (rng.random((2, 3, 5)) > 0.4).astype("float32")
    mask[:, :, 0] = 1.0
    return dict(model=m, inputs=[f32(rng, 2, 3, 4), f32(rng, 2, 5, 4), mask],
                description="MHA with attention_mask by keyword")


@impls("keras3", "tfkeras")
def case_mha_causal_only(K, impl, rng):
    """MultiHeadAttention with use_causal_mask and no Keras masks (Keras 3's fused causal path)."""
    L = K.layers
    x = K.Input((4, 3), name="x")
    y = L.MultiHeadAttention(num_heads=2, key_dim=2, name="mha_causal_only")(x, x, use_causal_mask=True)
    m = K.Model(x, y, name="mha_causal_only")
    return dict(model=m, inputs=[f32(rng, 2, 4, 3)], description="MHA causal self-attention without padding masks")
