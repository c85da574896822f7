"""Convolution layers: Conv1D/2D/3D, transposed, depthwise, separable, locally connected.

Most cases put several layers with different options on branches of one input, so one small
model covers many options. tf-keras cases cover configs that differ from Keras 3
(`depthwise_kernel`, `LocallyConnected*`).
"""

from engine._util import f32, impls


def _branches(K, shape, layers, name):
    x = K.Input(shape, name="x")
    outs = [l(x) for l in layers]
    return K.Model(x, outs, name=name)


@impls("keras3")
def case_conv1d(K, impl, rng):
    """Conv1D: valid, same+strides, causal+dilation, groups, no bias + activation, strides+dilation."""
    L = K.layers
    layers = [
        L.Conv1D(4, 3, name="valid"),
        L.Conv1D(4, 3, strides=2, padding="same", name="same_s2"),
        L.Conv1D(4, 3, padding="causal", dilation_rate=2, name="causal_d2"),
        L.Conv1D(6, 2, groups=3, activation="relu", name="groups3"),
        L.Conv1D(5, 3, use_bias=False, activation="tanh", name="nobias"),
        L.Conv1D(3, 3, strides=3, padding="causal", name="causal_s3"),
    ]
    return dict(model=_branches(K, (9, 3), layers, "conv1d"), inputs=[f32(rng, 2, 9, 3)],
                description="Conv1D options on branches")


@impls("keras3")
def case_conv2d(K, impl, rng):
    """Conv2D: valid, same+strides, dilation, groups, rectangular kernel, strides+dilation."""
    L = K.layers
    layers = [
        L.Conv2D(4, 3, name="valid"),
        L.Conv2D(4, 3, strides=2, padding="same", name="same_s2"),
        L.Conv2D(4, (3, 2), strides=(2, 1), dilation_rate=1, name="rect"),
        L.Conv2D(4, 3, dilation_rate=2, padding="same", activation="relu", name="dil2"),
        L.Conv2D(6, 3, groups=3, padding="same", name="groups3"),
        L.Conv2D(5, 1, use_bias=False, name="pointwise"),
        L.Conv2D(3, 2, dilation_rate=(1, 2), use_bias=False, name="dil_nobias"),
    ]
    return dict(model=_branches(K, (7, 7, 3), layers, "conv2d"), inputs=[f32(rng, 2, 7, 7, 3)],
                description="Conv2D options on branches")


@impls("keras3")
def case_conv3d(K, impl, rng):
    """Conv3D: valid, same+strides, dilation, groups."""
    L = K.layers
    layers = [
        L.Conv3D(3, 2, name="valid"),
        L.Conv3D(3, (3, 2, 2), strides=(2, 1, 2), padding="same", name="same_s"),
        L.Conv3D(3, 2, dilation_rate=(2, 1, 1), activation="relu", name="dil"),
        L.Conv3D(4, 2, groups=2, padding="same", use_bias=False, name="groups2"),
    ]
    return dict(model=_branches(K, (5, 6, 4, 2), layers, "conv3d"), inputs=[f32(rng, 2, 5, 6, 4, 2)],
                description="Conv3D options on branches")


@impls("keras3")
def case_conv3d_channels_first(K, impl, rng):
    """Conv3D with data_format=channels_first."""
    L = K.layers
    layers = [L.Conv3D(3, 2, padding="same", strides=2, data_format="channels_first", name="c3")]
    return dict(model=_branches(K, (2, 5, 4, 4), layers, "conv3d_cf"), inputs=[f32(rng, 2, 2, 5, 4, 4)],
                description="channels_first Conv3D")


@impls("keras3")
def case_conv1d_transpose(K, impl, rng):
    """Conv1DTranspose: valid, same+strides, output_padding (TF on CPU refuses dilated transposed convs)."""
    L = K.layers
    layers = [
        L.Conv1DTranspose(4, 3, name="valid"),
        L.Conv1DTranspose(4, 3, strides=2, padding="same", name="same_s2"),
        L.Conv1DTranspose(4, 3, strides=2, output_padding=1, name="valid_op1"),
        L.Conv1DTranspose(3, 4, strides=3, padding="same", output_padding=2, name="same_op2"),
        L.Conv1DTranspose(3, 2, strides=2, padding="valid", name="k_lt_s"),
    ]
    return dict(model=_branches(K, (6, 3), layers, "conv1dt"), inputs=[f32(rng, 2, 6, 3)],
                description="Conv1DTranspose options on branches")


@impls("keras3", "tfkeras")
def case_conv2d_transpose(K, impl, rng):
    """Conv2DTranspose: valid, same+strides, output_padding (TF on CPU refuses dilated transposed convs)."""
    L = K.layers
    layers = [
        L.Conv2DTranspose(4, 3, name="valid"),
        L.Conv2DTranspose(4, 3, strides=2, padding="same", name="same_s2"),
        L.Conv2DTranspose(4, (3, 2), strides=(2, 3), output_padding=(1, 2), name="valid_op"),
        L.Conv2DTranspose(3, 4, strides=2, padding="same", output_padding=1, activation="relu", name="same_op"),
    ]
    return dict(model=_branches(K, (5, 4, 3), layers, "conv2dt"), inputs=[f32(rng, 2, 5, 4, 3)],
                description="Conv2DTranspose options on branches")


@impls("keras3", "tfkeras")
def case_conv3d_transpose(K, impl, rng):
    """Conv3DTranspose: valid, same+strides, output_padding."""
    L = K.layers
    layers = [
        L.Conv3DTranspose(3, 2, name="valid"),
        L.Conv3DTranspose(3, 3, strides=(2, 1, 2), padding="same", name="same_s"),
        L.Conv3DTranspose(2, 2, strides=2, output_padding=1, name="valid_op"),
    ]
    return dict(model=_branches(K, (3, 4, 3, 2), layers, "conv3dt"), inputs=[f32(rng, 2, 3, 4, 3, 2)],
                description="Conv3DTranspose options on branches")


@impls("keras3")
def case_depthwise_conv1d(K, impl, rng):
    """DepthwiseConv1D: multiplier, strides, dilation, same/valid/causal."""
    L = K.layers
    layers = [
        L.DepthwiseConv1D(3, name="valid"),
        L.DepthwiseConv1D(3, depth_multiplier=2, strides=2, padding="same", name="m2_s2"),
        L.DepthwiseConv1D(3, strides=2, dilation_rate=2, padding="same", name="s2_d2"),
        L.DepthwiseConv1D(2, dilation_rate=2, use_bias=False, name="dil_nobias"),
    ]
    return dict(model=_branches(K, (9, 3), layers, "dw1d"), inputs=[f32(rng, 2, 9, 3)],
                description="DepthwiseConv1D options on branches")


@impls("keras3", "tfkeras")
def case_depthwise_conv2d(K, impl, rng):
    """DepthwiseConv2D: multiplier, strides, dilation, same/valid, activation."""
    L = K.layers
    layers = [
        L.DepthwiseConv2D(3, name="valid"),
        L.DepthwiseConv2D(3, depth_multiplier=2, strides=2, padding="same", name="m2_s2"),
        L.DepthwiseConv2D((2, 3), dilation_rate=2, activation="relu", use_bias=False, name="dil"),
    ]
    return dict(model=_branches(K, (7, 7, 3), layers, "dw2d"), inputs=[f32(rng, 2, 7, 7, 3)],
                description="DepthwiseConv2D options on branches")


@impls("keras3")
def case_separable_conv1d(K, impl, rng):
    """SeparableConv1D: multiplier, strides, dilation, same/valid, no bias."""
    L = K.layers
    layers = [
        L.SeparableConv1D(4, 3, name="valid"),
        L.SeparableConv1D(5, 3, depth_multiplier=2, strides=2, padding="same", name="m2_s2"),
        L.SeparableConv1D(4, 2, dilation_rate=2, use_bias=False, activation="relu", name="dil"),
    ]
    return dict(model=_branches(K, (9, 3), layers, "sep1d"), inputs=[f32(rng, 2, 9, 3)],
                description="SeparableConv1D options on branches")


@impls("keras3", "tfkeras")
def case_separable_conv2d(K, impl, rng):
    """SeparableConv2D: multiplier, strides, dilation, same/valid, no bias."""
    L = K.layers
    layers = [
        L.SeparableConv2D(4, 3, name="valid"),
        L.SeparableConv2D(5, 3, depth_multiplier=2, strides=2, padding="same", name="m2_s2"),
        L.SeparableConv2D(4, 2, dilation_rate=2, use_bias=False, activation="relu", name="dil"),
    ]
    return dict(model=_branches(K, (7, 7, 3), layers, "sep2d"), inputs=[f32(rng, 2, 7, 7, 3)],
                description="SeparableConv2D options on branches")


@impls("tfkeras")
def case_locally_connected1d(K, impl, rng):
    """LocallyConnected1D: implementations 1, 2, 3; strides; same padding (impl 2/3)."""
    L = K.layers
    layers = [
        L.LocallyConnected1D(4, 3, implementation=1, name="impl1"),
        L.LocallyConnected1D(4, 3, strides=2, implementation=1, use_bias=False, name="impl1_s2"),
        L.LocallyConnected1D(3, 3, implementation=2, name="impl2"),
        L.LocallyConnected1D(3, 2, strides=2, padding="same", implementation=2, name="impl2_same"),
        L.LocallyConnected1D(3, 3, implementation=3, activation="relu", name="impl3"),
        L.LocallyConnected1D(3, 4, strides=3, padding="same", implementation=3, name="impl3_same"),
    ]
    return dict(model=_branches(K, (8, 3), layers, "lc1d"), inputs=[f32(rng, 2, 8, 3)],
                description="LocallyConnected1D implementations on branches")


@impls("tfkeras")
def case_locally_connected2d(K, impl, rng):
    """LocallyConnected2D: implementations 1, 2, 3; strides; same padding (impl 2/3)."""
    L = K.layers
    layers = [
        L.LocallyConnected2D(3, 3, implementation=1, name="impl1"),
        L.LocallyConnected2D(3, (2, 3), strides=(2, 1), implementation=1, name="impl1_s"),
        L.LocallyConnected2D(2, 3, implementation=2, name="impl2"),
        L.LocallyConnected2D(2, 3, strides=2, padding="same", implementation=2, name="impl2_same"),
        L.LocallyConnected2D(2, 2, implementation=3, use_bias=False, name="impl3"),
        L.LocallyConnected2D(2, 3, strides=(1, 2), padding="same", implementation=3, name="impl3_same"),
    ]
    return dict(model=_branches(K, (5, 6, 2), layers, "lc2d"), inputs=[f32(rng, 2, 5, 6, 2)],
                description="LocallyConnected2D implementations on branches")


@impls("tfkeras")
def case_locally_connected_channels_first(K, impl, rng):
    """LocallyConnected1D/2D with data_format=channels_first, implementations 1, 2, 3."""
    L = K.layers
    x1 = K.Input((3, 8), name="x1")
    x2 = K.Input((2, 5, 4), name="x2")
    outs = [
        L.LocallyConnected1D(3, 3, implementation=1, data_format="channels_first", name="a1")(x1),
        L.LocallyConnected1D(3, 3, implementation=2, data_format="channels_first", name="a2")(x1),
        L.LocallyConnected1D(3, 2, strides=2, padding="same", implementation=3, data_format="channels_first",
                             name="a3")(x1),
        L.LocallyConnected2D(2, 2, implementation=1, data_format="channels_first", name="b1")(x2),
        L.LocallyConnected2D(2, 3, padding="same", implementation=2, data_format="channels_first", name="b2")(x2),
        L.LocallyConnected2D(2, 2, strides=2, implementation=3, data_format="channels_first", name="b3")(x2),
    ]
    m = K.Model([x1, x2], outs, name="lc_cf")
    return dict(model=m, inputs=[f32(rng, 2, 3, 8), f32(rng, 2, 2, 5, 4)], description="channels_first LC")


@impls("tfkeras")
def case_conv_tfkeras(K, impl, rng):
    """tf.keras Conv1D/2D/3D configs (Keras 2 keys), causal Conv1D, Conv2D groups."""
    L = K.layers
    x1 = K.Input((9, 3), name="x1")
    x2 = K.Input((6, 6, 2), name="x2")
    outs = [
        L.Conv1D(4, 3, padding="causal", dilation_rate=2, name="c1")(x1),
        L.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="c2")(x2),
        L.Conv2D(4, 3, groups=2, name="c2g")(x2),
        L.Conv3D(2, 2, name="c3")(L.Reshape((6, 6, 2, 1))(x2)),
    ]
    m = K.Model([x1, x2], outs, name="conv_tfk")
    return dict(model=m, inputs=[f32(rng, 2, 9, 3), f32(rng, 2, 6, 6, 2)], description="tf.keras convs")


@impls("tfkeras")
def case_conv1d_family_tfkeras(K, impl, rng):
    """tf.keras 1-D family: Conv1DTranspose, SeparableConv1D, DepthwiseConv1D (Keras 2 configs)."""
    L = K.layers
    layers = [
        L.Conv1DTranspose(3, 3, strides=2, padding="same", name="t1"),
        L.Conv1DTranspose(3, 2, strides=2, output_padding=1, name="t1_op"),
        L.SeparableConv1D(4, 3, depth_multiplier=2, padding="same", name="s1"),
        L.DepthwiseConv1D(3, depth_multiplier=2, strides=2, name="d1"),
    ]
    return dict(model=_branches(K, (8, 3), layers, "c1d_tfk"), inputs=[f32(rng, 2, 8, 3)],
                description="tf.keras 1-D conv family")


@impls("keras3")
def case_channels_first_xla(K, impl, rng):
    """channels_first layers Keras computes on CPU (grouped Conv2D runs through XLA)."""
    L = K.layers
    layers = [
        L.Conv2D(6, 3, groups=3, padding="same", data_format="channels_first", name="g"),
    ]
    return dict(model=_branches(K, (3, 6, 5), layers, "cf_xla"), inputs=[f32(rng, 2, 3, 6, 5)],
                description="grouped channels_first Conv2D")

