using Microsoft.ML.LoRA.Models;

namespace Microsoft.ML.LoRA.Lora;

/// <summary>
/// Attaching plain LoRA to a layer. An extension here rather than a method of <see cref="LoraLinear"/> because the
/// layer belongs to the models, below LoRA: it knows adapters only through <see cref="ILinearAdapter"/>, not LoRA's
/// scaling rules and initialisations.
/// </summary>
public static class LoraAttachment
{
    /// <summary>
    /// Attaches a fresh adapter of rank <paramref name="rank"/>: plain LoRA, or DoRA with <paramref name="dora"/>
    /// (<see cref="DoraAdapter"/>). B starts at zero (and DoRA's magnitude at the weight's row norms), so the output is
    /// unchanged. PiSSA, OLoRA and LoftQ take the factors from the weight instead and leave the rest in it
    /// (<see cref="ResidualInit"/>; <paramref name="loftqBits"/> and <paramref name="loftqIterations"/> are LoftQ's).
    /// Returns LoftQ's approximation errors for a LoftQ initialisation, else null.
    /// </summary>
    /// <exception cref="InvalidOperationException">The layer already has an adapter.</exception>
    public static LoftqError? AttachAdapter(this LoraLinear layer, int rank, double alpha, double dropout, LoraScaling scaling, LoraInit init, bool dora = false,
        int loftqBits = 4, int loftqIterations = 1)
    {
        // Checked before the adapter is made, so a refused attach draws nothing from the global generator.
        if (layer.HasAdapter) throw new InvalidOperationException("this layer already has an adapter");
        if (rank <= 0) throw new ArgumentOutOfRangeException(nameof(rank), "rank must be positive");
        if (dora && ResidualInit.Takes(init)) throw new ArgumentException($"{init} initialisation with DoRA is not supported.", nameof(init));
        var draw = ResidualInit.Takes(init) ? LoraInit.KaimingUniform : init;
        layer.Attach(dora
            ? new DoraAdapter(layer, rank, alpha, dropout, scaling, draw)
            : new LoraAdapter(layer.InFeatures, layer.OutFeatures, rank, alpha, dropout, scaling, draw, layer.Device));
        return ResidualInit.Takes(init) ? ResidualInit.Apply(layer, init, loftqBits, loftqIterations) : null;
    }
}
