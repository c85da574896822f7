"""Helpers shared by the engine case modules."""


def f32(rng, *shape):
    return rng.standard_normal(shape).astype("float32")


def impls(*names):
    """Decorator: the implementations a case runs under (default keras3 only)."""

    def deco(fn):
        fn.impls = names
        return fn

    return deco


def seq(K, input_shape, *layers, name="m", dtype="float32"):
    """A Sequential model with an explicit Input."""
    return K.Sequential([K.Input(input_shape, dtype=dtype), *layers], name=name)
