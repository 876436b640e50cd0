/// How a matrix product sees its input. `.int8` quantizes each activation row to int8 blocks, as
/// llama.cpp's CPU backend does for quantized weights (fast, the default). `.f32` uses the f32
/// values as they are: slower, but a small change of the input (an f16-rounded boundary state)
/// cannot flip an int8 rounding step, so a split model reproduces the full model run the same way.
public enum ActivationPrecision: String, Sendable, CaseIterable {
    case int8
    case f32
}
