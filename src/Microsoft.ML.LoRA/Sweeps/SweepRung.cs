namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// One round of a sweep: how many configurations it trains and for how many epochs. Grid and random sweeps have a
/// single rung whose <see cref="Epochs"/> is null (each configuration trains its own epochs); successive halving has
/// several, each training the best configurations of the one before for more epochs.
/// </summary>
/// <param name="Index">0 for the first rung.</param>
/// <param name="Trials">Configurations trained in this rung.</param>
/// <param name="Epochs">Epochs every configuration of this rung trains for; null keeps each configuration's own.</param>
public sealed record SweepRung(int Index, int Trials, int? Epochs);
