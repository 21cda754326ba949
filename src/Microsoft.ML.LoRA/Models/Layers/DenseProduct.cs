using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// The base product in the weight's own type: F.linear over the layer's <c>weight</c> and <c>bias</c> parameters.
/// The weight stays a parameter registered on the layer (state dicts, optimizers and device moves see it there), so
/// this reads it from the layer on every call rather than keeping a reference that a move would leave stale.
/// </summary>
internal sealed class DenseProduct(LoraLinear layer) : IBaseProduct
{
    public Tensor Multiply(Tensor x)
    {
        using var transposed = layer.FanInFanOut ? layer.weight.t() : null;
        return F.linear(x, transposed ?? layer.weight, layer.bias);
    }

    public bool MultipliesIn(ScalarType inputType) => true;

    public Tensor DenseWeight() => layer.FanInFanOut ? layer.weight.t() : layer.weight.alias();

    public void StoreWeight(Tensor weight)
    {
        using var stored = layer.FanInFanOut ? weight.t() : weight.alias();
        layer.weight.copy_(stored);
    }

    public void Dispose() { }
}
