using Microsoft.ML;

namespace Microsoft.ML.LoRA.Data;

/// <summary>A data set split in two: rows to train on and rows to validate on.</summary>
/// <param name="Train">The training rows, in the source's order.</param>
/// <param name="Validation">The validation rows, in the source's order.</param>
public sealed record TrainValidationData(IDataView Train, IDataView Validation);
