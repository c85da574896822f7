"""Keras 3 operation nodes in functional models (`keras.ops.*` on symbolic tensors).

Every output is float32: boolean results are cast (`ops.cast(b, "float32")`), which is what
strata computes for them (0/1 f32).
"""

import numpy as np

from engine._util import f32, impls


def _f(K, t):
    return K.ops.cast(t, "float32")


@impls("keras3")
def case_elementwise(K, impl, rng):
    """Binary and unary numpy ops, constants on either side (x + 2.0, 3.0 - x, 2 ** x)."""
    o = K.ops
    x = K.Input((5,), name="x")
    y = K.Input((5,), name="y")
    outs = [
        x + 2.0, 3.0 - x, x * y, x / (o.abs(y) + 1.0), o.divide(1, o.abs(x) + 0.5),
        o.true_divide(x, 4), o.power(o.abs(x), 1.5), o.power(2.0, x), x ** 2,
        o.maximum(x, 0.1), o.minimum(0.5, y), o.negative(x), o.abs(x), o.sqrt(o.abs(x)), o.square(x),
        o.exp(x), o.log(o.abs(x) + 1.0), o.log1p(o.abs(x)), o.expm1(x), o.floor(x * 3), o.ceil(x * 3),
        o.round(x * 3), o.sign(x), o.floor_divide(x * 5, 2.0), o.mod(x * 5, 2.0), o.mod(-7.0, o.abs(y) + 1),
        o.subtract(x, y), o.add(x, y), o.multiply(3, y), o.reciprocal(o.abs(x) + 1), o.sin(x), o.cos(x),
        o.tanh(x), o.add(x, np.arange(5, dtype="float32")),
    ]
    m = K.Model([x, y], outs, name="elementwise")
    return dict(model=m, inputs=[f32(rng, 3, 5) * 2, f32(rng, 3, 5) * 2], description="elementwise keras.ops")


@impls("keras3")
def case_compare(K, impl, rng):
    """Comparisons, logical ops, where and clip; booleans cast to float32."""
    o = K.ops
    x = K.Input((6,), name="x")
    y = K.Input((6,), name="y")
    outs = [
        _f(K, o.equal(x, y)), _f(K, o.not_equal(x, 0.0)), _f(K, o.greater(x, y)), _f(K, o.greater_equal(x, 0.5)),
        _f(K, o.less(0.0, x)), _f(K, o.less_equal(x, y)), _f(K, x > 0), _f(K, x <= y),
        _f(K, o.logical_and(x > 0, y > 0)), _f(K, o.logical_or(x > 0, y > 0)), _f(K, o.logical_not(x > 0)),
        _f(K, o.logical_xor(x > 0, y > 0)),
        o.where(x > 0, x, 0.0), o.where(y < 0, 1.0, y), o.where(x > y, x, y), o.clip(x, -0.5, 0.5),
        o.clip(y, 0, 1),
    ]
    m = K.Model([x, y], outs, name="compare")
    xv = np.round(f32(rng, 4, 6) * 2) / 2
    yv = np.round(f32(rng, 4, 6) * 2) / 2
    return dict(model=m, inputs=[xv.astype("float32"), yv.astype("float32")], description="comparisons")


@impls("keras3")
def case_reductions(K, impl, rng):
    """Reductions with axis / keepdims, arg reductions, any/all, logsumexp, std/var, cumsum."""
    o = K.ops
    x = K.Input((3, 4), name="x")
    outs = [
        o.sum(x, axis=1), o.sum(x, axis=(1, 2), keepdims=True), o.mean(x, axis=-1), o.mean(x, axis=[1, 2]),
        o.max(x, axis=1, keepdims=True), o.min(x, axis=-1), o.amax(x, axis=2), o.amin(x, axis=1),
        o.prod(x, axis=1), _f(K, o.any(x > 1.0, axis=-1)), _f(K, o.all(x > -1.0, axis=1, keepdims=True)),
        _f(K, o.argmax(x, axis=-1)), _f(K, o.argmin(x, axis=1)), o.logsumexp(x, axis=-1),
        o.std(x, axis=1), o.var(x, axis=-1, keepdims=True), o.cumsum(x, axis=1), o.cumprod(x, axis=-1),
    ]
    m = K.Model(x, outs, name="reductions")
    return dict(model=m, inputs=[f32(rng, 2, 3, 4)], description="reductions")


@impls("keras3")
def case_shapes(K, impl, rng):
    """reshape, transpose, expand_dims, squeeze, concatenate, stack, tile, repeat, flip, swapaxes."""
    o = K.ops
    x = K.Input((3, 4), name="x")
    y = K.Input((3, 4), name="y")
    outs = [
        o.reshape(x, (-1, 12)), o.reshape(x, (-1, 2, 6)), o.transpose(x, (0, 2, 1)), o.expand_dims(x, 1),
        o.expand_dims(x, -1), o.squeeze(o.expand_dims(x, 2), axis=2), o.concatenate([x, y], axis=-1),
        o.concatenate([x, y, x], axis=1), o.stack([x, y], axis=1), o.stack([x, y], axis=-1),
        o.tile(x, (1, 2, 1)), o.repeat(x, 2, axis=1), o.flip(x, axis=1), o.flip(x, axis=(1, 2)),
        o.swapaxes(x, 1, 2), o.moveaxis(x, 1, 2),
    ]
    m = K.Model([x, y], outs, name="shapes")
    return dict(model=m, inputs=[f32(rng, 2, 3, 4), f32(rng, 2, 3, 4)], description="shape ops")


@impls("keras3")
def case_getitem(K, impl, rng):
    """Slicing: steps, negative indices and steps, None, Ellipsis, integer indices."""
    x = K.Input((5, 4), name="x")
    outs = [
        x[:, 1:3], x[:, ::2], x[:, ::-1], x[:, -2], x[..., None], x[:, None, 1:], x[:, 1, -3:-1],
        x[..., 0], x[:, -1:0:-2], x[:, 3:1:-1, ::3], x[0], x[:, :, -1:],
    ]
    m = K.Model(x, outs, name="getitem")
    return dict(model=m, inputs=[f32(rng, 3, 5, 4)], description="GetItem slices")


@impls("keras3")
def case_matmul_einsum(K, impl, rng):
    """matmul (batched, broadcast against a constant) and einsum."""
    o = K.ops
    a = K.Input((3, 4), name="a")
    b = K.Input((4, 2), name="b")
    v = K.Input((4,), name="v")
    w = rng.standard_normal((4, 5)).astype("float32")
    outs = [
        o.matmul(a, b), o.matmul(a, w), o.einsum("bij,bjk->bik", a, b), o.einsum("bij->bji", a),
        o.einsum("bi,bi->b", v, v), o.einsum("bij,bj->bi", a, v), o.einsum("bij,jk->bik", a, w),
        o.einsum("bii->bi", o.matmul(a, o.transpose(a, (0, 2, 1)))), o.matmul(v, w),
    ]
    m = K.Model([a, b, v], outs, name="matmul_einsum")
    return dict(model=m, inputs=[f32(rng, 2, 3, 4), f32(rng, 2, 4, 2), f32(rng, 2, 4)], description="matmul/einsum")


@impls("keras3")
def case_activations(K, impl, rng):
    """keras.ops.nn activations and math.erf / rsqrt."""
    o = K.ops
    x = K.Input((6,), name="x")
    outs = [
        o.relu(x), o.relu6(x * 4), o.sigmoid(x), o.softmax(x), o.softmax(x, axis=1), o.log_softmax(x),
        o.gelu(x), o.gelu(x, approximate=False), o.silu(x), o.elu(x), o.elu(x, alpha=0.5), o.selu(x),
        o.leaky_relu(x), o.leaky_relu(x, negative_slope=0.1), o.softplus(x), o.softsign(x), o.hard_sigmoid(x),
        o.hard_silu(x), o.log_sigmoid(x), o.erf(x), o.rsqrt(o.abs(x) + 1), o.nn.swish(x),
    ]
    m = K.Model(x, outs, name="nn_activations")
    return dict(model=m, inputs=[f32(rng, 3, 6) * 3], description="nn activations")


@impls("keras3")
def case_cast_onehot(K, impl, rng):
    """cast to int32 (truncates), float16, bool; one_hot and take on integer inputs."""
    o = K.ops
    x = K.Input((5,), name="x")
    t = K.Input((4,), name="t", dtype="int32")
    table = rng.standard_normal((6, 3)).astype("float32")
    outs = [
        _f(K, o.cast(x * 3, "int32")), o.cast(o.cast(x, "float16"), "float32"), _f(K, o.cast(x, "bool")),
        o.one_hot(t, 6), o.one_hot(t, 6, axis=1), o.take(table, t, axis=0), _f(K, t + 1), _f(K, t // 2),
        o.cast(t, "float32") / 2,
    ]
    m = K.Model([x, t], outs, name="cast_onehot")
    tv = rng.integers(0, 6, size=(3, 4)).astype("int32")
    return dict(model=m, inputs=[f32(rng, 3, 5) * 2, tv], description="cast / one_hot / take")


@impls("keras3")
def case_mask_ops(K, impl, rng):
    """The mask ops Keras 3 writes for Embedding(mask_zero) / Masking: not_equal then any."""
    o = K.ops
    x = K.Input((5, 3), name="x")
    t = K.Input((6,), name="t", dtype="int32")
    outs = [_f(K, o.any(o.not_equal(x, 0.0), axis=-1)), _f(K, o.not_equal(t, 0))]
    m = K.Model([x, t], outs, name="mask_ops")
    xv = f32(rng, 2, 5, 3)
    xv[0, 1] = 0.0
    xv[1, 3:] = 0.0
    tv = np.array([[1, 2, 0, 3, 0, 0], [0, 4, 5, 0, 1, 2]], dtype="int32")
    return dict(model=m, inputs=[xv, tv], description="mask-producing ops")


@impls("keras3")
def case_split_norm(K, impl, rng):
    """Multi-output ops (split, unstack) and norms (linalg.norm, nn.normalize)."""
    o = K.ops
    x = K.Input((4, 6), name="x")
    a, b, c = o.split(x, 3, axis=-1)
    p, q = o.split(x, [1], axis=1)
    u = o.unstack(x, axis=1)
    outs = [
        a, b, c, p, q, *u, o.norm(x, axis=-1), o.norm(x, ord=1, axis=1, keepdims=True), o.norm(x, ord=float("inf"), axis=-1),
        o.norm(x, ord=3, axis=-1), o.norm(x, axis=(1, 2)), o.norm(x, ord=1, axis=(1, 2)), o.norm(x, ord=float("-inf"), axis=(1, 2)),
        o.normalize(x), o.normalize(x, axis=1, order=1),
    ]
    m = K.Model(x, outs, name="split_norm")
    return dict(model=m, inputs=[f32(rng, 2, 4, 6)], description="split / unstack / norm / normalize")


@impls("keras3")
def case_misc(K, impl, rng):
    """pad, *_like, ravel-free reshapes, tril/triu, sort, average (with and without weights)."""
    o = K.ops
    x = K.Input((3, 4), name="x")
    w = K.Input((3, 4), name="w")
    outs = [
        o.pad(x, ((0, 0), (1, 2), (0, 1))), o.pad(x, ((0, 0), (2, 0), (1, 1)), constant_values=-1.5),
        o.zeros_like(x), o.ones_like(x), o.full_like(x, 2.5), o.tril(x), o.triu(x, k=1), o.tril(x, k=-1),
        o.sort(x), o.sort(x, axis=1), o.average(x, axis=1), o.average(x, axis=-1, weights=o.abs(w) + 0.1),
        o.average(x, axis=2, weights=np.array([1.0, 2.0, 3.0, 4.0], dtype="float32")),
    ]
    m = K.Model([x, w], outs, name="misc")
    return dict(model=m, inputs=[f32(rng, 2, 3, 4), f32(rng, 2, 3, 4)], description="pad/like/tri/sort/average")


@impls("keras3")
def case_resize(K, impl, rng):
    """keras.ops.image.resize: bilinear / nearest, up and down, channels_first."""
    o = K.ops
    x = K.Input((5, 6, 2), name="x")
    outs = [
        o.image.resize(x, (10, 12)), o.image.resize(x, (3, 4)), o.image.resize(x, (7, 9)),
        o.image.resize(x, (10, 12), interpolation="nearest"), o.image.resize(x, (3, 5), interpolation="nearest"),
        o.image.resize(x, (4, 8), data_format="channels_first"),
    ]
    m = K.Model(x, outs, name="resize")
    return dict(model=m, inputs=[f32(rng, 2, 5, 6, 2)], description="image.resize")


@impls("keras3")
def case_more_nn(K, impl, rng):
    """Shrink/sparse activations, glu, softmax over all axes, moments, top_k, argsort."""
    o = K.ops
    x = K.Input((3, 6), name="x")
    mean, var = o.moments(x, axes=[1])
    mean2, var2 = o.moments(x, axes=[-1], keepdims=True)
    vals, idx = o.top_k(x, 3)
    outs = [
        o.soft_shrink(x), o.hard_shrink(x, threshold=0.3), o.tanh_shrink(x), o.sparse_plus(x), o.sparse_sigmoid(x),
        o.squareplus(x), o.squareplus(x, b=1), o.threshold(x, 0.2, -1.0), o.glu(x), o.glu(x[:, :2], axis=1),
        o.softmax(x, axis=None), mean, var, mean2, var2, vals, _f(K, idx), _f(K, o.argsort(x)), _f(K, o.argsort(x, axis=1)),
    ]
    m = K.Model(x, outs, name="more_nn")
    return dict(model=m, inputs=[f32(rng, 2, 3, 6)], description="more nn ops, moments, top_k")
