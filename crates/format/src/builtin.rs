//! Class names that Keras itself defines (any version), so that everything else can be
//! reported as a custom class that needs registering.
//!
//! The list is data, not an engine: it says a name is Keras's, not that strata can run it.

/// Layer and model classes of Keras 1, Keras 2 / tf.keras and Keras 3, as written in configs.
pub const LAYER_CLASSES: &[&str] = &[
    // models
    "Sequential", "Functional", "Model",
    // core
    "InputLayer", "Input", "Dense", "EinsumDense", "Activation", "Embedding", "Masking", "Identity",
    "Lambda", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Flatten", "Reshape", "Permute",
    "RepeatVector", "Cropping1D", "Cropping2D", "Cropping3D", "ZeroPadding1D", "ZeroPadding2D",
    "ZeroPadding3D", "UpSampling1D", "UpSampling2D", "UpSampling3D",
    // conv
    "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "Convolution1D", "Convolution2D", "Convolution3D", "Convolution2DTranspose", "Convolution3DTranspose",
    "Deconvolution2D", "Deconvolution3D", "AtrousConvolution1D", "AtrousConvolution2D",
    "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D", "SeparableConvolution1D",
    "SeparableConvolution2D", "LocallyConnected1D", "LocallyConnected2D",
    // pooling
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D", "AvgPool2D", "AvgPool3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalMaxPool1D", "GlobalMaxPool2D",
    "GlobalMaxPool3D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D",
    // normalization
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
    "SpectralNormalization", "RMSNormalization",
    // merging
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot", "Merge",
    // activations
    "ReLU", "LeakyReLU", "PReLU", "ELU", "ThresholdedReLU", "Softmax",
    // recurrent
    "SimpleRNN", "LSTM", "GRU", "RNN", "Bidirectional", "TimeDistributed", "ConvLSTM1D", "ConvLSTM2D",
    "ConvLSTM3D", "SimpleRNNCell", "LSTMCell", "GRUCell", "StackedRNNCells", "CuDNNLSTM", "CuDNNGRU",
    "TimeDistributedDense", "Highway", "MaxoutDense",
    // attention
    "Attention", "AdditiveAttention", "MultiHeadAttention", "GroupedQueryAttention",
    // preprocessing
    "Rescaling", "Normalization", "CenterCrop", "Resizing", "StringLookup", "IntegerLookup",
    "TextVectorization", "CategoryEncoding", "Hashing", "HashedCrossing", "Discretization",
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
    "RandomBrightness", "RandomCrop", "RandomHeight", "RandomWidth", "AutoContrast",
    // TF-specific wrappers
    "TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer", "TFSMLayer", "TorchModuleWrapper",
    "JaxLayer", "FlaxLayer",
];

/// Whether `class_name` (as written in a config) is one of Keras's own layer classes.
pub fn is_keras_layer(class_name: &str) -> bool {
    LAYER_CLASSES.contains(&class_name)
}
