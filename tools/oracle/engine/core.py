"""Core layers and activations."""

from engine._util import f32, impls, seq

ACTIVATIONS = [
    "relu", "relu6", "leaky_relu", "sigmoid", "hard_sigmoid", "tanh", "softmax", "log_softmax",
    "softplus", "softsign", "selu", "elu", "exponential", "swish", "silu", "hard_swish", "gelu",
    "mish", "linear",
    # Keras 3 only
    "hard_silu", "celu", "glu", "tanh_shrink", "hard_tanh", "hard_shrink", "soft_shrink", "sparse_plus",
    "squareplus", "log_sigmoid", "sparse_sigmoid",
]

TFKERAS_ACTIVATIONS = [
    "relu", "relu6", "sigmoid", "hard_sigmoid", "tanh", "softmax", "log_softmax", "softplus", "softsign",
    "selu", "elu", "exponential", "swish", "gelu", "mish", "linear",
]


@impls("keras3")
def case_activations(K, impl, rng):
    """Every named activation, each on its own branch of the same input."""
    L = K.layers
    x = K.Input((6,), name="x")
    outs = [L.Activation(a, name=f"act_{a}")(x) for a in ACTIVATIONS]
    # Functions (not strings) serialize as {"class_name": "function", "config": name, ...}.
    outs.append(L.Dense(3, activation=K.activations.gelu, name="dense_fn_gelu")(x))
    outs.append(L.Dense(3, activation=K.activations.leaky_relu, name="dense_fn_leaky")(x))
    m = K.Model(x, outs, name="activations")
    return dict(model=m, inputs=[f32(rng, 4, 6) * 3], description="Activation layer per named activation")


@impls("keras3", "tfkeras")
def case_activation_layers(K, impl, rng):
    """ReLU options, LeakyReLU, ELU, PReLU (shared_axes), Softmax (axis lists), Identity, ThresholdedReLU."""
    L = K.layers
    x = K.Input((3, 4), name="x")
    leaky = L.LeakyReLU(negative_slope=0.25) if impl == "keras3" else L.LeakyReLU(alpha=0.25)
    leaky._name = "leaky"
    outs = [
        L.ReLU(max_value=6.0, negative_slope=0.1, threshold=0.5, name="relu_all")(x),
        L.ReLU(max_value=1.0, name="relu_max")(x),
        L.ReLU(negative_slope=0.2, name="relu_slope")(x),
        L.ReLU(threshold=1.0, name="relu_threshold")(x),
        leaky(x),
        L.ELU(alpha=0.5, name="elu")(x),
        L.PReLU(shared_axes=[1], name="prelu_shared")(x),
        L.PReLU(name="prelu")(x),
        L.Softmax(axis=1, name="softmax_axis1")(x),
        L.Softmax(axis=[1, 2], name="softmax_axes")(x),
        L.ActivityRegularization(l1=0.01, name="act_reg")(x),
    ]
    if impl == "tfkeras":
        outs.append(L.ThresholdedReLU(theta=0.3, name="thresholded")(x))
    if hasattr(L, "Identity"):
        outs.append(L.Identity(name="identity")(x))
    m = K.Model(x, outs, name="activation_layers")
    return dict(model=m, inputs=[f32(rng, 2, 3, 4) * 2], description="activation layers with options")


@impls("keras3", "tfkeras")
def case_dot_variants(K, impl, rng):
    """Dot with int and pair axes, rank-3 batched dot, negative axes and normalize."""
    L = K.layers
    a = K.Input((3, 4), name="a")
    b = K.Input((5, 4), name="b")
    c = K.Input((4,), name="c")
    d = K.Input((4,), name="d")
    outs = [
        L.Dot(axes=1, name="dot_vec")([c, d]),
        L.Dot(axes=1, normalize=True, name="cosine")([c, d]),
        L.Dot(axes=(2, 2), name="dot_rank3")([a, b]),
        L.Dot(axes=(-1, -1), normalize=True, name="dot_rank3_norm")([a, b]),
        L.Dot(axes=(2, 1), name="dot_mat_vec")([a, c]),
        L.Dot(axes=(1, 2), name="dot_vec_mat")([d, b]),
    ]
    m = K.Model([a, b, c, d], outs, name="dot_variants")
    return dict(model=m, inputs=[f32(rng, 2, 3, 4), f32(rng, 2, 5, 4), f32(rng, 2, 4), f32(rng, 2, 4)],
                description="Dot axes variants")


@impls("keras3", "tfkeras")
def case_batchnorm_axes(K, impl, rng):
    """BatchNormalization over axis 1 (channels_first), the last axis of rank 3 and (tf-keras) axis lists."""
    L = K.layers
    x = K.Input((3, 4, 2), name="x")
    outs = [
        L.BatchNormalization(axis=1, name="bn_axis1")(x),
        L.BatchNormalization(axis=-1, center=False, name="bn_last")(x),
    ]
    if impl == "tfkeras":
        outs.append(L.BatchNormalization(axis=[1, 3], name="bn_axes13")(x))
    else:
        outs.append(L.BatchNormalization(axis=2, synchronized=True, scale=False, name="bn_sync")(x))
    m = K.Model(x, outs, name="batchnorm_axes")
    return dict(model=m, inputs=[f32(rng, 2, 3, 4, 2)], description="BatchNormalization axis variants")


@impls("keras3", "tfkeras")
def case_layernorm_variants(K, impl, rng):
    """LayerNormalization over several axes, without center, and Keras 3 rms_scaling."""
    L = K.layers
    x = K.Input((3, 4), name="x")
    outs = [
        L.LayerNormalization(axis=[1, 2], name="ln_axes")(x),
        L.LayerNormalization(center=False, epsilon=1e-5, name="ln_nocenter")(x),
    ]
    if impl == "keras3":
        outs.append(L.LayerNormalization(rms_scaling=True, name="ln_rms")(x))
    m = K.Model(x, outs, name="layernorm_variants")
    return dict(model=m, inputs=[f32(rng, 2, 3, 4) * 2 + 1], description="LayerNormalization variants")


@impls("keras3", "tfkeras")
def case_dense_rank3(K, impl, rng):
    """Dense applied to rank-3 and rank-4 inputs (acts on the last axis)."""
    L = K.layers
    x = K.Input((2, 3, 4), name="x")
    h = L.Dense(5, activation="gelu", name="d4")(x)
    y = L.Reshape((6, 5), name="r")(h)
    z = L.Dense(2, activation="log_softmax", name="d3")(y)
    m = K.Model(x, [h, z], name="dense_rank3")
    return dict(model=m, inputs=[f32(rng, 2, 2, 3, 4)], description="Dense on rank-3/4 inputs")


@impls("tfkeras")
def case_activations_tfkeras(K, impl, rng):
    """tf-keras named activations (hard_sigmoid is 0.2x+0.5 there)."""
    L = K.layers
    x = K.Input((6,), name="x")
    outs = [L.Activation(a, name=f"act_{a}")(x) for a in TFKERAS_ACTIVATIONS]
    outs.append(L.Dense(3, activation=K.activations.gelu, name="dense_fn_gelu")(x))
    m = K.Model(x, outs, name="activations_tfkeras")
    return dict(model=m, inputs=[f32(rng, 4, 6) * 3], description="Activation layer per tf-keras named activation")


@impls("tfkeras")
def case_tf_ops(K, impl, rng):
    """tf-keras functional model built with raw tf ops (TFOpLambda / SlicingOpLambda layers)."""
    import tensorflow as tf

    L = K.layers
    x = K.Input((4, 3), name="x")
    h = tf.nn.relu(x) + 1.0
    m1 = tf.reduce_mean(h, axis=1)
    s = h[:, 1:3]
    c = tf.concat([s, s * 2.0], axis=-1)
    r = tf.reshape(c, (-1, 12))
    t = tf.transpose(x, perm=[0, 2, 1])
    mm = tf.matmul(x, t)
    a = tf.math.add(m1, 3.0)
    last = x[:, -1, :]
    mx = tf.math.maximum(x, h) - tf.math.sigmoid(x) / 2.0
    red = tf.reduce_sum(tf.math.square(x), axis=[1, 2], keepdims=True)
    sm = tf.nn.softmax(x, axis=1)
    ex = tf.expand_dims(m1, 1)
    st = x[:, ::2, 1:]
    d = L.Dense(2, name="dense")(tf.math.tanh(r))
    outs = [m1, r, mm, a, last, mx, red, sm, ex, st, d]
    m = K.Model(x, outs, name="tf_ops")
    return dict(model=m, inputs=[f32(rng, 2, 4, 3)], description="TFOpLambda/SlicingOpLambda ops")
