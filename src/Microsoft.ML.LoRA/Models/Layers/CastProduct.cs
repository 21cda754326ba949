using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// The base product in another floating type than the weight's (bfloat16 under mixed precision): input, weight and
/// bias are rounded to <paramref name="compute"/> for the product (which accumulates in fp32) and the output comes
/// back in the input's type, as torch.autocast("cpu", torch.bfloat16) treats nn.Linear. The weight itself stays in
/// its own type, stored as <see cref="DenseProduct"/> stores it, so parameters, gradients and optimizer state do too.
/// </summary>
internal sealed class CastProduct(LoraLinear layer, ScalarType compute) : IBaseProduct
{
    readonly DenseProduct _stored = new(layer);

    public Tensor Multiply(Tensor x)
    {
        if (compute == x.dtype) return _stored.Multiply(x);
        // Casting the weight on every call (rather than caching a cast copy) costs one pass over the weight, a few
        // percent of the product, and can never serve a stale copy after the weight is loaded, merged or trained.
        using var transposed = layer.FanInFanOut ? layer.weight.t() : null;
        var w = transposed ?? layer.weight;
        using var xc = x.to_type(compute);
        using var wc = w.to_type(compute);
        using var bc = layer.bias?.to_type(compute);
        using var yc = F.linear(xc, wc, bc);
        return yc.to_type(x.dtype);
    }

    public bool MultipliesIn(ScalarType inputType) => inputType == compute;

    public Tensor DenseWeight() => _stored.DenseWeight();

    public void StoreWeight(Tensor weight) => _stored.StoreWeight(weight);

    public void Dispose() { }
}
