"""Spatial layers: pooling, global pooling, cropping, padding, upsampling, Flatten, CenterCrop,
Resizing -- channels_last and channels_first wherever Keras has a data_format.

Each case is one functional model with one branch per option, so a fixture covers many configs.
tf.keras cases only use channels_first where TF's CPU kernels accept it (2-D pooling in tf.keras
calls tf.nn.max_pool with NCHW, which the CPU kernel refuses).
"""

import numpy as np

from engine._util import f32, impls


def _branches(K, inputs, branches, name):
    """A functional model applying each (layer, input index) to its input."""
    outs = [layer(inputs[i]) for layer, i in branches]
    return K.Model(inputs, outs, name=name)


def _pool_branches(L, nd, impl):
    Max = getattr(L, f"MaxPooling{nd}D")
    Avg = getattr(L, f"AveragePooling{nd}D")
    MaxAlias = getattr(L, f"MaxPool{nd}D")
    AvgAlias = getattr(L, f"AvgPool{nd}D")
    p3 = (3,) * nd
    s2 = (2,) + (1,) * (nd - 1)
    out = [
        Max(name="max_default"),
        Avg(2, name="avg_default"),  # Keras 3 has no default pool_size for average pooling
        Max(pool_size=p3, strides=s2, padding="same", name="max_same"),
        Avg(pool_size=p3, strides=s2, padding="same", name="avg_same"),
        Max(pool_size=p3, strides=1, padding="valid", name="max_valid_s1"),
        Avg(pool_size=p3, strides=1, padding="valid", name="avg_valid_s1"),
        MaxAlias(pool_size=2, strides=3, padding="same", name="max_alias"),
        AvgAlias(pool_size=2, strides=3, padding="same", name="avg_alias"),
    ]
    # channels_first pooling: Keras 3 transposes around tf.nn.*_pool; tf.keras does so only in 3-D
    if impl == "keras3" or nd == 3:
        out += [
            Max(pool_size=2, strides=1, padding="same", data_format="channels_first", name="max_cf"),
            Avg(pool_size=2, strides=1, padding="same", data_format="channels_first", name="avg_cf"),
            Avg(pool_size=2, padding="valid", data_format="channels_first", name="avg_cf_valid"),
        ]
    return out


@impls("keras3", "tfkeras")
def case_pool1d(K, impl, rng):
    """MaxPooling1D/AveragePooling1D and aliases: default, same/valid, strides, channels_first."""
    x = K.Input((7, 4), name="x")
    m = _branches(K, [x], [(l, 0) for l in _pool_branches(K.layers, 1, impl)], "pool1d")
    return dict(model=m, inputs=[f32(rng, 2, 7, 4)], description="1-D pooling options")


@impls("keras3", "tfkeras")
def case_pool2d(K, impl, rng):
    """MaxPooling2D/AveragePooling2D and aliases: default, same/valid, strides, channels_first."""
    x = K.Input((7, 6, 3), name="x")
    m = _branches(K, [x], [(l, 0) for l in _pool_branches(K.layers, 2, impl)], "pool2d")
    return dict(model=m, inputs=[f32(rng, 2, 7, 6, 3)], description="2-D pooling options")


@impls("keras3", "tfkeras")
def case_pool3d(K, impl, rng):
    """MaxPooling3D/AveragePooling3D and aliases: default, same/valid, strides, channels_first."""
    x = K.Input((5, 4, 6, 2), name="x")
    m = _branches(K, [x], [(l, 0) for l in _pool_branches(K.layers, 3, impl)], "pool3d")
    return dict(model=m, inputs=[f32(rng, 2, 5, 4, 6, 2)], description="3-D pooling options")


@impls("keras3", "tfkeras")
def case_global_pool(K, impl, rng):
    """Global max/average pooling 1D/2D/3D (and aliases), keepdims, channels_first."""
    L = K.layers
    xs = [K.Input((5, 3), name="x1"), K.Input((4, 5, 3), name="x2"), K.Input((3, 4, 2, 3), name="x3")]
    branches = []
    for nd in (1, 2, 3):
        i = nd - 1
        for kind in ("Max", "Average"):
            cls = getattr(L, f"Global{kind}Pooling{nd}D")
            alias = getattr(L, f"Global{'Max' if kind == 'Max' else 'Avg'}Pool{nd}D")
            tag = f"{kind.lower()}{nd}d"
            branches += [
                (cls(name=f"g{tag}"), i),
                (alias(keepdims=True, name=f"g{tag}_keep"), i),
                (cls(data_format="channels_first", name=f"g{tag}_cf"), i),
                (cls(data_format="channels_first", keepdims=True, name=f"g{tag}_cf_keep"), i),
            ]
    m = _branches(K, xs, branches, "global_pool")
    ins = [f32(rng, 2, 5, 3), f32(rng, 2, 4, 5, 3), f32(rng, 2, 3, 4, 2, 3)]
    return dict(model=m, inputs=ins, description="global pooling options")


def case_global_pool_masked(K, impl, rng):
    """Masks from Embedding(mask_zero): GlobalAveragePooling1D averages unmasked steps only
    (channels_last and channels_first, keepdims); GlobalMaxPooling1D ignores the mask (Keras 3 does
    not pass it one). strata needs executor support for `mask` kwargs to run this case."""
    L = K.layers
    ids = K.Input((6,), dtype="int32", name="ids")
    e = L.Embedding(7, 4, mask_zero=True, name="emb")(ids)
    # Keras 3 records the implicit mask as a NotEqual op node passed as the `mask` kwarg; Permute
    # drops masks, so the channels_first branch gets the same op's output explicitly.
    ecf = L.Permute((2, 1), name="to_cf")(e)
    mask = K.ops.not_equal(ids, 0)
    outs = [
        L.GlobalAveragePooling1D(name="gap")(e),
        L.GlobalAveragePooling1D(keepdims=True, name="gap_keep")(e),
        L.GlobalMaxPooling1D(name="gmp")(e),
        L.GlobalAveragePooling1D(data_format="channels_first", name="gap_cf")(ecf, mask=mask),
    ]
    m = K.Model(ids, outs, name="global_pool_masked")
    x = np.array([[3, 1, 0, 5, 0, 0], [0, 2, 6, 4, 1, 0], [1, 1, 1, 1, 1, 1]], dtype="int32")
    return dict(model=m, inputs=[x], description="mask-aware global pooling")


@impls("keras3", "tfkeras")
def case_cropping(K, impl, rng):
    """Cropping1D/2D/3D: int, per-axis and per-side forms, channels_first."""
    L = K.layers
    xs = [K.Input((7, 3), name="x1"), K.Input((6, 7, 3), name="x2"), K.Input((5, 6, 4, 2), name="x3")]
    branches = [
        (L.Cropping1D((1, 2), name="c1"), 0),
        (L.Cropping1D(2, name="c1_int"), 0),
        (L.Cropping2D(((1, 0), (2, 1)), name="c2"), 1),
        (L.Cropping2D(1, name="c2_int"), 1),
        (L.Cropping2D((2, 1), name="c2_sym"), 1),
        (L.Cropping2D(((0, 1), (1, 0)), data_format="channels_first", name="c2_cf"), 1),
        (L.Cropping3D(((1, 0), (0, 1), (1, 1)), name="c3"), 2),
        (L.Cropping3D(1, name="c3_int"), 2),
        (L.Cropping3D(((0, 1), (1, 2), (1, 0)), data_format="channels_first", name="c3_cf"), 2),
    ]
    m = _branches(K, xs, branches, "cropping")
    return dict(model=m, inputs=[f32(rng, 2, 7, 3), f32(rng, 2, 6, 7, 3), f32(rng, 2, 5, 6, 4, 2)],
                description="cropping options")


@impls("keras3", "tfkeras")
def case_zero_padding(K, impl, rng):
    """ZeroPadding1D/2D/3D: int, per-axis and per-side forms, channels_first."""
    L = K.layers
    xs = [K.Input((4, 3), name="x1"), K.Input((3, 4, 2), name="x2"), K.Input((2, 3, 2, 2), name="x3")]
    branches = [
        (L.ZeroPadding1D((1, 2), name="p1"), 0),
        (L.ZeroPadding1D(2, name="p1_int"), 0),
        (L.ZeroPadding2D(((1, 0), (2, 1)), name="p2"), 1),
        (L.ZeroPadding2D(1, name="p2_int"), 1),
        (L.ZeroPadding2D((2, 1), name="p2_sym"), 1),
        (L.ZeroPadding2D(((0, 1), (1, 2)), data_format="channels_first", name="p2_cf"), 1),
        (L.ZeroPadding3D(((1, 0), (0, 1), (2, 1)), name="p3"), 2),
        (L.ZeroPadding3D(1, name="p3_int"), 2),
        (L.ZeroPadding3D(((0, 1), (1, 2), (1, 0)), data_format="channels_first", name="p3_cf"), 2),
    ]
    if impl == "keras3":  # ZeroPadding1D has no data_format in tf.keras
        branches.append((L.ZeroPadding1D((2, 1), data_format="channels_first", name="p1_cf"), 0))
    m = _branches(K, xs, branches, "zero_padding")
    return dict(model=m, inputs=[f32(rng, 2, 4, 3), f32(rng, 2, 3, 4, 2), f32(rng, 2, 2, 3, 2, 2)],
                description="zero padding options")


@impls("keras3", "tfkeras")
def case_upsampling(K, impl, rng):
    """UpSampling1D/2D/3D: factors per axis, nearest and bilinear, channels_first."""
    L = K.layers
    xs = [K.Input((3, 2), name="x1"), K.Input((3, 4, 2), name="x2"), K.Input((2, 3, 2, 2), name="x3")]
    branches = [
        (L.UpSampling1D(3, name="u1"), 0),
        (L.UpSampling1D(name="u1_default"), 0),
        (L.UpSampling2D((2, 3), name="u2"), 1),
        (L.UpSampling2D(2, data_format="channels_first", name="u2_cf"), 1),
        (L.UpSampling2D((2, 3), interpolation="bilinear", name="u2_bilinear"), 1),
        (L.UpSampling2D((3, 2), interpolation="bilinear", data_format="channels_first", name="u2_bilinear_cf"), 1),
        (L.UpSampling3D((2, 1, 3), name="u3"), 2),
        (L.UpSampling3D(2, data_format="channels_first", name="u3_cf"), 2),
    ]
    m = _branches(K, xs, branches, "upsampling")
    return dict(model=m, inputs=[f32(rng, 2, 3, 2), f32(rng, 2, 3, 4, 2), f32(rng, 2, 2, 3, 2, 2)],
                description="upsampling options")


@impls("keras3", "tfkeras")
def case_flatten(K, impl, rng):
    """Flatten of rank 2-5 inputs, channels_last and channels_first (transposed first)."""
    L = K.layers
    xs = [K.Input((3,), name="x1"), K.Input((3, 2), name="x2"), K.Input((2, 3, 4), name="x3"),
          K.Input((2, 3, 2, 2), name="x4")]
    branches = [
        (L.Flatten(name="f1"), 0),
        (L.Flatten(name="f2"), 1),
        (L.Flatten(data_format="channels_first", name="f2_cf"), 1),
        (L.Flatten(name="f3"), 2),
        (L.Flatten(data_format="channels_first", name="f3_cf"), 2),
        (L.Flatten(data_format="channels_first", name="f4_cf"), 3),
    ]
    m = _branches(K, xs, branches, "flatten")
    ins = [f32(rng, 2, 3), f32(rng, 2, 3, 2), f32(rng, 2, 2, 3, 4), f32(rng, 2, 2, 3, 2, 2)]
    return dict(model=m, inputs=ins, description="Flatten options")


@impls("keras3", "tfkeras")
def case_center_crop(K, impl, rng):
    """CenterCrop: a plain centred crop, and the smart_resize path when the target is larger
    than the input in one or both axes; channels_first."""
    L = K.layers
    x = K.Input((7, 6, 3), name="x")
    branches = [
        (L.CenterCrop(4, 3, name="crop"), 0),
        (L.CenterCrop(5, 6, name="crop_exact_width"), 0),
        (L.CenterCrop(9, 4, name="taller"), 0),
        (L.CenterCrop(10, 12, name="larger"), 0),
    ]
    if impl == "keras3":
        branches += [
            (L.CenterCrop(2, 2, data_format="channels_first", name="crop_cf"), 0),
            (L.CenterCrop(8, 3, data_format="channels_first", name="taller_cf"), 0),
        ]
    m = _branches(K, [x], branches, "center_crop")
    return dict(model=m, inputs=[f32(rng, 2, 7, 6, 3)], description="CenterCrop options")


@impls("keras3", "tfkeras")
def case_resizing(K, impl, rng):
    """Resizing: bilinear and nearest, up and down, crop_to_aspect_ratio, pad_to_aspect_ratio
    with a fill value, channels_first."""
    L = K.layers
    x = K.Input((5, 7, 2), name="x")
    branches = [
        (L.Resizing(9, 4, name="bilinear"), 0),
        (L.Resizing(3, 11, interpolation="nearest", name="nearest"), 0),
        (L.Resizing(10, 14, name="bilinear_x2"), 0),
        (L.Resizing(2, 3, name="bilinear_down"), 0),
        (L.Resizing(4, 4, crop_to_aspect_ratio=True, name="crop_aspect"), 0),
        (L.Resizing(6, 3, crop_to_aspect_ratio=True, interpolation="nearest", name="crop_aspect_nearest"), 0),
    ]
    if impl == "keras3":
        branches += [
            (L.Resizing(4, 4, pad_to_aspect_ratio=True, fill_value=0.5, name="pad_aspect"), 0),
            (L.Resizing(3, 8, pad_to_aspect_ratio=True, name="pad_aspect_wide"), 0),
            (L.Resizing(6, 4, data_format="channels_first", name="bilinear_cf"), 0),
            (L.Resizing(4, 3, crop_to_aspect_ratio=True, data_format="channels_first", name="crop_aspect_cf"), 0),
        ]
    m = _branches(K, [x], branches, "resizing")
    return dict(model=m, inputs=[f32(rng, 2, 5, 7, 2)], description="Resizing options")


def case_sequential_cnn(K, impl, rng):
    """A small channels_first CNN stack in a Sequential: padding, pooling, upsampling, cropping,
    global pooling (the layers chained, not side by side)."""
    L = K.layers
    m = K.Sequential([
        K.Input((2, 8, 8)),
        L.ZeroPadding2D(1, data_format="channels_first"),
        L.MaxPooling2D(2, data_format="channels_first"),
        L.UpSampling2D(2, interpolation="bilinear", data_format="channels_first"),
        L.Cropping2D(((1, 0), (0, 1)), data_format="channels_first"),
        L.AveragePooling2D(3, strides=2, padding="same", data_format="channels_first"),
        L.Flatten(data_format="channels_first"),
    ], name="sequential_cnn")
    return dict(model=m, inputs=[f32(rng, 3, 2, 8, 8)], description="chained channels_first spatial layers")


def case_mixed_precision(K, impl, rng):
    """Spatial layers under the mixed_float16 policy: inputs and outputs rounded to float16, average
    pooling accumulated in float16 (TF's CPU kernel; it has no float16 AvgPool3D, so no 3-D branch)."""
    L = K.layers
    x = K.Input((6, 5, 2), name="x")
    x1 = K.Input((9, 3), name="x1")
    p = "mixed_float16"
    branches = [
        (L.MaxPooling2D(2, padding="same", dtype=p, name="max"), 0),
        (L.AveragePooling2D(3, strides=1, dtype=p, name="avg"), 0),
        (L.AveragePooling2D(2, padding="same", data_format="channels_first", dtype=p, name="avg_cf"), 0),
        (L.AveragePooling1D(4, strides=1, padding="same", dtype=p, name="avg1d"), 1),
        (L.GlobalAveragePooling2D(dtype=p, name="gap"), 0),
        (L.UpSampling2D(2, interpolation="bilinear", dtype=p, name="up"), 0),
        (L.ZeroPadding2D(1, dtype=p, name="pad"), 0),
    ]
    m = _branches(K, [x, x1], branches, "mixed_precision")
    # values near 100 make float16 partial sums round visibly
    ins = [f32(rng, 2, 6, 5, 2) + 100, f32(rng, 2, 9, 3) * 30]
    return dict(model=m, inputs=ins, description="float16 compute in spatial layers")
