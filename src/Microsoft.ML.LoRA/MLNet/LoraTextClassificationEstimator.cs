using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Tokenization;
using Microsoft.ML.LoRA.Training;
using Microsoft.ML.Runtime;
using TorchSharp;

namespace Microsoft.ML.LoRA.MLNet;

/// <summary>
/// Fine-tunes a Hugging Face transformer classifier with LoRA. Create it with
/// <c>mlContext.MulticlassClassification.Trainers.LoraTextClassifier(...)</c> (key-typed label) or
/// <c>mlContext.BinaryClassification.Trainers.LoraTextClassifier(...)</c> (Boolean label).
/// The number of classes comes from the label's key cardinality, not from the labels seen in training.
/// </summary>
public sealed class LoraTextClassificationEstimator : IEstimator<LoraTextClassificationTransformer>
{
    readonly IChannelProvider _context;
    readonly LoraTextClassifierOptions _options;
    readonly ClassifierTask _task;

    /// <summary>Creates the estimator; messages go to <paramref name="context"/>'s Log event.</summary>
    public LoraTextClassificationEstimator(MLContext context, LoraTextClassifierOptions options, ClassifierTask task = ClassifierTask.Multiclass)
        : this((IChannelProvider)context, options, task) { }

    internal LoraTextClassificationEstimator(IChannelProvider context, LoraTextClassifierOptions options, ClassifierTask task)
    {
        _context = context ?? throw new ArgumentNullException(nameof(context));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _task = task;
    }

    /// <summary>The options this estimator trains with.</summary>
    public LoraTextClassifierOptions Options => _options;

    public LoraTextClassificationTransformer Fit(IDataView input)
    {
        _options.Validate();
        var schema = input.Schema;
        LoraTextClassificationTransformer.RequireText(schema, _options.TextColumnName);
        if (_options.TextPairColumnName is { } pairName) LoraTextClassificationTransformer.RequireText(schema, pairName);
        var labelColumn = schema.GetColumnOrNull(_options.LabelColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(input), $"Label column '{_options.LabelColumnName}' is not in the data; it has: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}.");
        var labels = _task switch
        {
            ClassifierTask.Binary => BinaryLabels(labelColumn),
            ClassifierTask.Regression => RegressionLabel.Check(labelColumn),
            _ => LabelSet.FromKeyColumn(labelColumn),
        };

        using var log = new MLContextLog(_context, "LoraTextClassifier");
        if (_options.Threads is int threads) torch.set_num_threads(threads);
        var folder = CheckpointFolder.Open(BaseModelResolver.Resolve(_options.ModelPath, _options.Hub));
        log.Info($"Base model {_options.ModelPath} ({folder.Config.ModelType}, {folder.Config.NumLayers} layers, hidden {folder.Config.HiddenSize}); {(_task == ClassifierTask.Regression ? "regression, one output" : $"{labels.Count} classes")}.");
        var weightsSha = folder.ComputeWeightsSha256();
        int maxLength = _options.MaxSequenceLength ?? Math.Min(256, TextEncoders.ModelMaxLength(folder.Config));
        var encoder = TextEncoders.FromFolder(folder.Directory, folder.Config, maxLength);

        lock (TorchRandomLock.Sync)
            return FitSeeded(input, labels, folder, weightsSha, encoder, log);
    }

    LoraTextClassificationTransformer FitSeeded(IDataView input, LabelSet labels, CheckpointFolder folder, string weightsSha, ITextEncoder encoder, MLContextLog log)
    {
        torch.manual_seed(_options.Seed);
        var lora = _options.Lora;
        var storage = lora.BaseStorageWhileLoading(folder, _options.FineTuning);
        var model = PretrainedModel.Load(folder, labels.Count, log.Info, storage);
        try
        {
            var setup = FineTuningSetup.Apply(model, _options.FineTuning, lora);
            lora.QuantizedAfterInit?.ApplyToLayers(model);
            if ((storage ?? lora.QuantizedAfterInit) is { } kept)
                log.Info((lora.QuantizedAfterInit is null ? "" : "LoftQ read the full-precision weights, then: ") + kept.Summary(model));
            if (setup.LoftqErrors.Count > 0)
                log.Info($"LoftQ initialisation of {setup.LoftqErrors.Count} layers: relative error to the full-precision weights " +
                    $"{setup.LoftqErrors.Values.Average(e => e.QuantizedOnly):F4} with the quantized weights alone, " +
                    $"{setup.LoftqErrors.Values.Average(e => e.WithAdapter):F4} with the adapters (mean over layers).");
            if (_options.InitialAdapterPath is { } initial)
            {
                var continued = InitialAdapter.Apply(model, initial);
                log.Info($"Starting from the adapter in {initial}: {continued.AdaptedModules.Count} layer(s) continue its LoRA factors (rank {continued.Rank}, alpha {continued.Alpha}).");
            }
            var counts = ParameterCounts.Of(model);
            var what = _options.FineTuning.Method switch
            {
                FineTuningMethod.Lora => $"LoRA on {setup.AdaptedModules.Count} layers",
                FineTuningMethod.HeadOnly => "Head-only fine-tuning",
                FineTuningMethod.LastLayers => $"Fine-tuning the last {setup.TrainedLayers.Count} layer(s) and the head",
                _ => "Full fine-tuning",
            };
            log.Info($"{what}; training {counts.Trainable:N0} of {counts.Total:N0} parameters ({counts.TrainablePercent:F2}%).");
            foreach (var created in model.CreatedModules.Where(c => !model.Layout.HeadModules.Contains(c)))
                log.Info(setup.SavedModules.Contains(created) || _options.FineTuning.Method == FineTuningMethod.Full
                    ? $"'{created}' is not in the checkpoint, so it trains with the head (ModulesToSave / --modules-to-save choose otherwise)."
                    : $"'{created}' is not in the checkpoint and ModulesToSave leaves it out: it keeps its random weights, which are saved with the model.");
            model.Use(_options.Precision);
            model.UseGradientCheckpointing(_options.GradientCheckpointing);
            if (_options.Precision == ComputePrecision.BFloat16 && !MixedPrecision.IsAccelerated)
                log.Warning("Precision is BFloat16 but this CPU has no native bf16 products (AVX-512 BF16 or AMX); they are emulated and slower than Float32.");
            else if (_options.Precision == ComputePrecision.Int8 && !Int8Scoring.IsAvailable)
                log.Warning("Precision is Int8 but this libtorch has no FBGEMM int8 kernels (x86-64 builds have them); the model trains and scores in float32.");
            else if (_options.Precision == ComputePrecision.Int8)
                log.Info("Training in float32; the fitted model scores with int8 products (Precision = Int8).");
            else if (_options.Precision != ComputePrecision.Float32)
                log.Info($"Matrix products in {(_options.Precision.UsesBFloat16() ? "bfloat16" : "float32")} (Precision = {_options.Precision}).");

            var reader = new LabeledTextReader(encoder, _options, _task, labels);
            var (train, skipped) = reader.Read(input, "training");
            if (skipped > 0) log.Warning($"Skipped {skipped} training row(s) without a label.");
            if (train.Count == 0) throw new InvalidOperationException("The training data has no labelled rows.");
            var validation = new List<LabeledExample>();
            if (_options.ValidationSet is { } vset)
            {
                var (v, vskipped) = reader.Read(vset, "validation");
                if (vskipped > 0) log.Warning($"Skipped {vskipped} validation row(s) whose label is missing or was not a training class.");
                validation = v;
            }
            else if (_options.ValidationFraction > 0)
            {
                (train, validation) = StratifiedSelection.Split(train, e => e.Label, _options.ValidationFraction, _options.Seed);
                log.Info($"Held out {validation.Count} of {train.Count + validation.Count} rows for validation (stratified).");
            }
            if (_options.EarlyStoppingPatience is not null && validation.Count == 0)
                log.Warning("EarlyStoppingPatience is set but there is no validation data; training runs all epochs.");

            var objective = _task == ClassifierTask.Regression ? RegressionLabel.Objective(_options, train, model, log.Info) : null;
            var trainer = new ClassifierTrainer(model, _options, encoder.PadTokenId, _options.Progress, log.Info,
                ModelIdentity(folder, weightsSha, labels.Count) + (objective is null ? "" : "; regression"), objective);
            var history = trainer.Train(train, validation, _options.CancellationToken);
            (objective as RegressionObjective)?.FoldInto(model);

            var info = new LoraModelInfo
            {
                Task = _task,
                TextColumnName = _options.TextColumnName,
                TextPairColumnName = _options.TextPairColumnName,
                LabelColumnName = _options.LabelColumnName,
                ScoreColumnName = _options.ScoreColumnName,
                PredictedLabelColumnName = _options.PredictedLabelColumnName,
                ProbabilityColumnName = _options.ProbabilityColumnName,
                Labels = labels,
                Lora = _options.Lora.Clone(),
                FineTuning = _options.FineTuning,
                MaxSequenceLength = encoder.MaxLength,
                InferenceBatchSize = _options.InferenceBatchSize,
                Precision = _options.Precision,
                BaseModel = new BaseModelReference(_options.ModelPath, folder.Directory, weightsSha, folder.Config.ModelType),
                TokenizerFiles = ReadTokenizerFiles(folder.Directory),
                History = history,
            };
            return new LoraTextClassificationTransformer(model, encoder, info);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        foreach (var name in new[] { _options.TextColumnName, _options.TextPairColumnName }.OfType<string>())
        {
            if (!inputSchema.TryFind(name, out var text))
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Text column '{name}' is not in the input schema.");
            if (text.ItemType is not TextDataViewType || text.Kind != SchemaShape.Column.VectorKind.Scalar)
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Text column '{name}' must be a scalar text column.");
        }
        if (!inputSchema.TryFind(_options.LabelColumnName, out var label))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Label column '{_options.LabelColumnName}' is not in the input schema.");
        if (_task == ClassifierTask.Regression) return SchemaShapes.With(inputSchema, new[] { RegressionLabel.ScoreShape(label, _options.ScoreColumnName) });
        var kind = _task == ClassifierTask.Binary ? "BinaryClassification" : "MulticlassClassification";
        SchemaShape Kinds(string valueKind, params SchemaShape.Column[] extra) => new(extra.Concat(new[]
        {
            SchemaShapes.Column(AnnotationNames.ScoreColumnKind, SchemaShape.Column.VectorKind.Scalar, TextDataViewType.Instance, false),
            SchemaShapes.Column(AnnotationNames.ScoreValueKind, SchemaShape.Column.VectorKind.Scalar, TextDataViewType.Instance, false),
        }));
        var added = new List<SchemaShape.Column>();
        if (_task == ClassifierTask.Multiclass)
        {
            if (!label.IsKey)
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Label column '{label.Name}' must be a key; add MapValueToKey(\"{label.Name}\") before the trainer.");
            var slotNames = SchemaShapes.Column(AnnotationNames.SlotNames, SchemaShape.Column.VectorKind.Vector, TextDataViewType.Instance, false);
            var keyValues = label.Annotations?.FirstOrDefault(a => a.Name == AnnotationNames.KeyValues) is { Name: not null } kv ? new[] { kv } : Array.Empty<SchemaShape.Column>();
            added.Add(SchemaShapes.Column(_options.ScoreColumnName, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false, Kinds("Score", slotNames)));
            added.Add(SchemaShapes.Column(_options.PredictedLabelColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt32, true, Kinds("PredictedLabel", keyValues)));
        }
        else
        {
            if (label.ItemType != BooleanDataViewType.Instance || label.Kind != SchemaShape.Column.VectorKind.Scalar)
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Label column '{label.Name}' must be Boolean for the binary classifier.");
            added.Add(SchemaShapes.Column(_options.ScoreColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false, Kinds("Score")));
            added.Add(SchemaShapes.Column(_options.ProbabilityColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false, Kinds("Probability")));
            added.Add(SchemaShapes.Column(_options.PredictedLabelColumnName, SchemaShape.Column.VectorKind.Scalar, BooleanDataViewType.Instance, false, Kinds("PredictedLabel")));
        }
        return SchemaShapes.With(inputSchema, added);
    }

    /// <summary>What a training checkpoint's fingerprint records of the model: base weights, classes, method, LoRA settings and the initial adapter's weights.</summary>
    string ModelIdentity(CheckpointFolder folder, string weightsSha, int classes)
    {
        string? initial = null;
        if (_options.InitialAdapterPath is { } dir && File.Exists(Path.Combine(dir, "adapter_model.safetensors")))
        {
            using var stream = File.OpenRead(Path.Combine(dir, "adapter_model.safetensors"));
            initial = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(stream));
        }
        return $"base={weightsSha};type={folder.Config.ModelType};classes={classes};task={_task};method={_options.FineTuning};" +
               $"lora={System.Text.Json.JsonSerializer.Serialize(_options.Lora)};initialAdapter={initial}";
    }

    static LabelSet BinaryLabels(DataViewSchema.Column label)
    {
        if (label.Type != BooleanDataViewType.Instance)
            throw new ArgumentOutOfRangeException(nameof(label), $"Label column '{label.Name}' has type {label.Type}; the binary classifier needs a Boolean label (true = positive class).");
        return LabelSet.Binary();
    }

    static IReadOnlyDictionary<string, byte[]> ReadTokenizerFiles(string folder) =>
        TextEncoders.TokenizerFileNames.Select(n => Path.Combine(folder, n)).Where(File.Exists)
            .ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
}
