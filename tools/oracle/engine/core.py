"""Core layers and activations."""

from engine._util import f32, impls, seq

ACTIVATIONS = [
    "relu", "relu6", "leaky_relu", "sigmoid", "hard_sigmoid", "tanh", "softmax", "log_softmax",
    "softplus", "softsign", "selu", "elu", "exponential", "swish", "silu", "hard_swish", "gelu",
    "mish", "linear",
]


@impls("keras3")
def case_activations(K, impl, rng):
    """Every named activation, each on its own branch of the same input."""
    L = K.layers
    x = K.Input((6,), name="x")
    outs = [L.Activation(a, name=f"act_{a}")(x) for a in ACTIVATIONS]
    m = K.Model(x, outs, name="activations")
    return dict(model=m, inputs=[f32(rng, 4, 6) * 3], description="Activation layer per named activation")
