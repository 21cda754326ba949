using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Models.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Models;

/// <summary>
/// Multi-head self-attention with separate query, key and value projections and, optionally, the output projection,
/// under the names a family's checkpoint uses (BERT's attention.self.{query,key,value}; DistilBERT's
/// attention.{q_lin,k_lin,v_lin,out_lin}). A family with a fused projection (GPT-2's c_attn) calls the kernels itself.
/// </summary>
internal sealed class SelfAttention : nn.Module<Tensor, Tensor?, Tensor>, IRowAttention
{
    // Held through a tuple rather than fields of their own: TorchSharp registers a module's Module-typed fields under
    // the field's name when it collects components, which would list each projection twice (under the field name and
    // under the checkpoint's name given to register_module).
    readonly (LoraLinear Query, LoraLinear Key, LoraLinear Value, LoraLinear? Output) _layers;
    readonly int _heads;
    readonly double _dropout;

    /// <param name="name">The module's own name (BERT: "self", DistilBERT: "attention").</param>
    /// <param name="config">Hidden size, heads and attention dropout.</param>
    /// <param name="projections">The names of the query, key and value projections, and of the output projection or null.</param>
    public SelfAttention(string name, TransformerConfig config, (string Query, string Key, string Value, string? Output) projections) : base(name)
    {
        _layers = (Projection(projections.Query, config), Projection(projections.Key, config), Projection(projections.Value, config),
            projections.Output is null ? null : Projection(projections.Output, config));
        _heads = config.NumHeads;
        _dropout = config.AttentionDropout;
    }

    LoraLinear Projection(string name, TransformerConfig config)
    {
        var layer = new LoraLinear(config.HiddenSize, config.HiddenSize);
        register_module(name, layer);
        return layer;
    }

    public override Tensor forward(Tensor x, Tensor? keyMask) => Attend(x, x, keyMask);

    /// <summary>
    /// <paramref name="rows"/> (some or all rows of <paramref name="x"/>) attending to every position of x:
    /// [batch, rows, hidden]. For a few rows at inference the key and value projections are folded into the queries
    /// and probabilities (<see cref="Attention.ReadRows"/>) where both layers can give their eval weight.
    /// </summary>
    public Tensor Attend(Tensor rows, Tensor x, Tensor? keyMask)
    {
        using var q = _layers.Query.forward(rows);
        using var context = Context(q, rows, x, keyMask);
        return _layers.Output is null ? context.alias() : _layers.Output.forward(context);
    }

    Tensor Context(Tensor q, Tensor rows, Tensor x, Tensor? keyMask)
    {
        if (Attention.FoldsKeysAndValues(rows, x, _heads, training))
        {
            using var keyWeight = _layers.Key.EvalWeight(x);
            using var valueWeight = _layers.Value.EvalWeight(x);
            if (keyWeight is not null && valueWeight is not null)
                return Attention.ReadRows(q, x, keyWeight, valueWeight, _layers.Value.bias, _heads, keyMask);
        }
        using var k = _layers.Key.forward(x);
        using var v = _layers.Value.forward(x);
        return Attention.Run(q, k, v, _heads, keyMask, _dropout, training);
    }
}
