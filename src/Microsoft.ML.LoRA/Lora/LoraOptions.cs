using System.Text.Json.Serialization;
using Microsoft.ML.LoRA.Models.Quantization;

namespace Microsoft.ML.LoRA.Lora;

/// <summary>How the low-rank update B·A is scaled before it is added to the frozen layer's output.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<LoraScaling>))]
public enum LoraScaling
{
    /// <summary>alpha / r, as in the LoRA paper and PEFT (default).</summary>
    AlphaOverRank,
    /// <summary>alpha / sqrt(r), rank-stabilised LoRA (PEFT's <c>use_rslora</c>).</summary>
    RsLora,
    /// <summary>alpha alone, the convention of the widely copied "LoRA from scratch" tutorial.</summary>
    Alpha,
}

/// <summary>
/// How the A and B factors start out. In every scheme the layer's output is unchanged at the start, so training starts
/// from the base model: B starts at zero, or (PiSSA, OLoRA) the part of the weight A and B take over is subtracted from
/// the frozen weight.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<LoraInit>))]
public enum LoraInit
{
    /// <summary>A ~ Kaiming-uniform (a = sqrt 5), as nn.Linear does; B = 0. PEFT's default.</summary>
    KaimingUniform,
    /// <summary>A ~ N(0, 1/r); B = 0. PEFT's <c>init_lora_weights="gaussian"</c>.</summary>
    Gaussian,
    /// <summary>A = randn / sqrt(r); B = 0. The tutorial's initialisation.</summary>
    ScaledRandn,
    /// <summary>
    /// PiSSA (PEFT's <c>init_lora_weights="pissa"</c>): A and B from the weight's r largest singular values and vectors
    /// (s·B·A = U_r S_r V_rᵀ), and the frozen weight becomes the residual W − s·B·A. Loading the adapter recomputes the
    /// residual from the base checkpoint, as PEFT does.
    /// </summary>
    Pissa,
    /// <summary>
    /// OLoRA (PEFT's <c>init_lora_weights="olora"</c>): A and B from the weight's QR decomposition (B = Q_r, A = R_r), and
    /// the frozen weight becomes W − s·B·A.
    /// </summary>
    Olora,

    /// <summary>
    /// PEFT's <c>"loftq"</c> (LoftQ, Li et al. 2023): A and B are chosen so that the quantized weight plus the
    /// adapter's update approximates the full-precision weight (alternating quantization and truncated SVD,
    /// <see cref="LoraOptions.LoftqIterations"/> rounds, <see cref="LoraOptions.LoftqBits"/> bits). The base weight
    /// becomes the quantized one, so a fit on a quantized base starts from the full-precision model's outputs (nearly)
    /// rather than the quantized model's.
    /// </summary>
    Loftq,
}

/// <summary>Which biases train alongside the adapters (PEFT's <c>bias</c>).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<LoraBias>))]
public enum LoraBias
{
    /// <summary>No bias trains (default).</summary>
    None,
    /// <summary>Every bias in the model trains.</summary>
    All,
    /// <summary>Only the biases of layers that carry an adapter train.</summary>
    LoraOnly,
}

/// <summary>
/// What to adapt and how: the LoRA hyper-parameters, which linear layers get adapters, and what else trains.
/// Targets are the union of <see cref="TargetModules"/>, <see cref="TargetModulesRegex"/> and the switches
/// (<see cref="LoraQuery"/> ...), each switch mapped onto the family's own module names. When none of them is set,
/// every linear layer of the transformer layers is adapted (query, key, value, attention output, feed-forward; not the
/// head), which learned about 3 points better than PEFT's usual query + value on SST-2 and TREC (docs/quality.md). An
/// empty (not null) <see cref="TargetModules"/> with no switch and no regex means no adapter at all: only the
/// <see cref="ModulesToSave"/> train.
/// </summary>
public sealed class LoraOptions
{
    /// <summary>Rank r of the update. Default 8.</summary>
    public int Rank { get; set; } = 8;

    /// <summary>Alpha; the update is scaled by alpha / r (see <see cref="Scaling"/>). Default 16.</summary>
    public double Alpha { get; set; } = 16;

    /// <summary>Dropout on the adapter's input during training. Default 0.05.</summary>
    public double Dropout { get; set; } = 0.05;

    /// <summary>
    /// Module names or dotted suffixes to adapt, as in PEFT's <c>target_modules</c> list: a module matches when its
    /// full name equals an entry or ends with "." + the entry. The entry <c>all-linear</c> adapts every linear layer
    /// except the classification head and the modules the checkpoint lacked (they train in full instead). Null: use
    /// the switches, or every transformer-layer linear when no switch is on.
    /// </summary>
    public IList<string>? TargetModules { get; set; }

    /// <summary>A regular expression that must match a module's whole name (PEFT's string form of target_modules).</summary>
    public string? TargetModulesRegex { get; set; }

    /// <summary>Adapt the attention query projection (query / q_lin / GPT-2's fused c_attn).</summary>
    public bool LoraQuery { get; set; }
    /// <summary>Adapt the attention key projection (key / k_lin / GPT-2's fused c_attn).</summary>
    public bool LoraKey { get; set; }
    /// <summary>Adapt the attention value projection (value / v_lin / GPT-2's fused c_attn).</summary>
    public bool LoraValue { get; set; }
    /// <summary>Adapt the attention output projection (attention.output.dense / out_lin / attn.c_proj).</summary>
    public bool LoraProjection { get; set; }
    /// <summary>Adapt both feed-forward layers (intermediate.dense + output.dense / ffn.lin1 + ffn.lin2 / mlp.c_fc + mlp.c_proj).</summary>
    public bool LoraMlp { get; set; }
    /// <summary>Adapt the classification head's linear layers with LoRA instead of training them in full.</summary>
    public bool LoraHead { get; set; }

    /// <summary>Only adapt modules in these layer indices (PEFT's <c>layers_to_transform</c>). Null: all layers.</summary>
    public IList<int>? LayersToTransform { get; set; }

    /// <summary>
    /// The name of the module list whose index <see cref="LayersToTransform"/> selects (PEFT's <c>layers_pattern</c>):
    /// <c>layer</c> for BERT-style encoders, <c>layers</c> for LLaMA, <c>h</c> for GPT-2. Null: the first of layer,
    /// layers, h, block, blocks in the module's name. Needs <see cref="LayersToTransform"/>.
    /// </summary>
    public IList<string>? LayersPattern { get; set; }

    /// <summary>
    /// Ranks for particular modules instead of <see cref="Rank"/> (PEFT's <c>rank_pattern</c>): each key is a module
    /// name or a regular expression that must match the end of a module's name at a dot boundary
    /// (<c>"value"</c>, <c>"layer\.0\..*query"</c>); the first matching key wins. Null: every adapter has rank
    /// <see cref="Rank"/>.
    /// </summary>
    public IDictionary<string, int>? RankPattern { get; set; }

    /// <summary>Alphas for particular modules instead of <see cref="Alpha"/> (PEFT's <c>alpha_pattern</c>), keyed as <see cref="RankPattern"/>.</summary>
    public IDictionary<string, double>? AlphaPattern { get; set; }

    /// <summary>Scaling rule. Default alpha / r.</summary>
    public LoraScaling Scaling { get; set; } = LoraScaling.AlphaOverRank;

    /// <summary>Initialisation of A (B always starts at zero). Default Kaiming-uniform.</summary>
    public LoraInit Init { get; set; } = LoraInit.KaimingUniform;

    /// <summary>
    /// DoRA (PEFT's <c>use_dora</c>): each adapted weight is split into a trained magnitude per output and a direction
    /// that LoRA updates (<see cref="DoraAdapter"/>). Costs a little more per step than plain LoRA. Default false.
    /// </summary>
    public bool UseDora { get; set; }

    /// <summary>
    /// QLoRA's frozen base: the linear layers of the transformer layers keep their weights quantized in memory
    /// (<see cref="BaseQuantization.Nf4"/> or <see cref="BaseQuantization.Fp4"/> in blocks of 64, or
    /// <see cref="BaseQuantization.Int8"/> per row, or <see cref="BaseQuantization.BFloat16"/> /
    /// <see cref="BaseQuantization.Float16"/> in 16 bits) and dequantize them for each product, forward and backward.
    /// The adapters, the head, embeddings and norms stay in floating point. The quantized weights live in memory only:
    /// a saved model refers to the base checkpoint and quantizes it again when it loads, so it predicts as it did in
    /// training. Default <see cref="BaseQuantization.None"/>: no rounding; a bf16 or fp16 checkpoint then still keeps
    /// its frozen weights in their own 16 bits where the fit leaves them unchanged (<see cref="BaseStorageWhileLoading"/>).
    /// </summary>
    public BaseQuantization BaseQuantization { get; set; } = BaseQuantization.None;

    /// <summary>
    /// Quantize the 4-bit formats' block scales again (QLoRA's double quantization, bitsandbytes'
    /// <c>bnb_4bit_use_double_quant</c>): 8-bit scales in blocks of 256, about 4.13 bits per weight instead of 4.5.
    /// Needs <see cref="BaseQuantization"/> Nf4 or Fp4. Default false.
    /// </summary>
    public bool DoubleQuantization { get; set; }

    /// <summary>
    /// LoftQ's quantization (PEFT's <c>loftq_config.loftq_bits</c>): 4 (NF4) or 8 (int8). Null (default): the base's
    /// (8 for an Int8 base, else 4); see <see cref="EffectiveLoftqBits"/>.
    /// </summary>
    public int? LoftqBits { get; set; }

    /// <summary>The bits LoftQ quantizes to: <see cref="LoftqBits"/>, else 8 for an Int8 base and 4 otherwise.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public int EffectiveLoftqBits => LoftqBits ?? (BaseQuantization == BaseQuantization.Int8 ? 8 : 4);

    /// <summary>LoftQ's alternating rounds of quantization and SVD (PEFT's <c>loftq_config.loftq_iter</c>). Default 1.</summary>
    public int LoftqIterations { get; set; } = 1;

    /// <summary>
    /// The quantization a model is loaded with (packed layer by layer as it is built and read), or null: none, or
    /// <see cref="QuantizedAfterInit"/>.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public QuantizedBase? QuantizedWhileLoading => Init == LoraInit.Loftq ? null : QuantizedBase;

    /// <summary>
    /// How a model for a <paramref name="fineTuning"/> fit over <paramref name="folder"/> keeps its transformer layers'
    /// linear weights while it loads: <see cref="QuantizedWhileLoading"/> when a quantization is chosen; otherwise, for
    /// a bf16 or fp16 checkpoint, that 16-bit type (<see cref="QuantizedBase.StoredSixteenBit"/>: half of fp32's
    /// memory, the same products) when the fit leaves those weights as the checkpoint has them, that is LoRA or
    /// head-only fine-tuning with an initialisation that does not rewrite the base (not PiSSA, OLoRA or LoftQ) and
    /// the default <see cref="ModulesToSave"/>; else null (fp32).
    /// </summary>
    public QuantizedBase? BaseStorageWhileLoading(Checkpoints.CheckpointFolder folder, FineTuning fineTuning)
    {
        if (QuantizedWhileLoading is { } quantized) return quantized;
        bool keepsCheckpointWeights = fineTuning.Method is FineTuningMethod.Lora or FineTuningMethod.HeadOnly
            && Init is not (LoraInit.Pissa or LoraInit.Olora or LoraInit.Loftq) && ModulesToSave is null;
        return keepsCheckpointWeights ? QuantizedBase.StoredSixteenBit(folder) : null;
    }

    /// <summary>
    /// The quantization applied once the adapters are initialised (<see cref="QuantizedBase.ApplyToLayers"/>), or null:
    /// LoftQ computes its factors from the full-precision weights, so with LoftQ the model loads in fp32, LoftQ runs,
    /// and the transformer layers are packed then.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public QuantizedBase? QuantizedAfterInit => Init == LoraInit.Loftq ? QuantizedBase : null;

    /// <summary>The quantized-base setting these options describe, or null for a floating-point base.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public QuantizedBase? QuantizedBase => QuantizedBase.For(BaseQuantization, DoubleQuantization);

    /// <summary>Which biases train. Default none.</summary>
    public LoraBias Bias { get; set; } = LoraBias.None;

    /// <summary>
    /// Modules trained in full and saved with the adapter (PEFT's <c>modules_to_save</c>), by name or suffix.
    /// Null: the family's classification head (unless <see cref="LoraHead"/> puts adapters on it) and every module the
    /// checkpoint lacked, such as a masked-LM checkpoint's pooler. Empty: none. A created module left out stays frozen
    /// at its random weights, and is still saved with the model.
    /// </summary>
    public IList<string>? ModulesToSave { get; set; }

    /// <summary>The factor applied to B·A for a given rank and alpha under a scaling rule.</summary>
    public static double ScaleFor(LoraScaling scaling, int rank, double alpha) => scaling switch
    {
        LoraScaling.AlphaOverRank => alpha / rank,
        LoraScaling.RsLora => alpha / Math.Sqrt(rank),
        LoraScaling.Alpha => alpha,
        _ => throw new ArgumentOutOfRangeException(nameof(scaling)),
    };

    /// <summary>The rank of the adapter on <paramref name="module"/>: its <see cref="RankPattern"/> entry, else <see cref="Rank"/>.</summary>
    public int RankFor(string module) =>
        RankPattern is { Count: > 0 } p && ModulePattern.FirstMatch(p.Keys, module) is { } key ? p[key] : Rank;

    /// <summary>The alpha of the adapter on <paramref name="module"/>: its <see cref="AlphaPattern"/> entry, else <see cref="Alpha"/>.</summary>
    public double AlphaFor(string module) =>
        AlphaPattern is { Count: > 0 } p && ModulePattern.FirstMatch(p.Keys, module) is { } key ? p[key] : Alpha;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option that is out of range.</summary>
    public void Validate()
    {
        if (Rank <= 0) throw new ArgumentException($"LoRA rank must be positive (got {Rank}).", nameof(Rank));
        if (Alpha <= 0 || double.IsNaN(Alpha) || double.IsInfinity(Alpha)) throw new ArgumentException($"LoRA alpha must be a positive number (got {Alpha}).", nameof(Alpha));
        if (Dropout < 0 || Dropout >= 1 || double.IsNaN(Dropout)) throw new ArgumentException($"LoRA dropout must be in [0, 1) (got {Dropout}).", nameof(Dropout));
        if (!Enum.IsDefined(BaseQuantization)) throw new ArgumentException($"BaseQuantization {BaseQuantization} is not one of {string.Join(", ", Enum.GetNames<BaseQuantization>())}.", nameof(BaseQuantization));
        if (DoubleQuantization && BaseQuantization is not (BaseQuantization.Nf4 or BaseQuantization.Fp4))
            throw new ArgumentException($"DoubleQuantization quantizes the block scales of a 4-bit base; it needs BaseQuantization Nf4 or Fp4 (got {BaseQuantization}).", nameof(DoubleQuantization));
        if (Init == LoraInit.Loftq)
        {
            if (EffectiveLoftqBits is not (4 or 8)) throw new ArgumentException($"LoftqBits must be 4 (NF4) or 8 (int8) (got {LoftqBits}).", nameof(LoftqBits));
            if (LoftqIterations < 1) throw new ArgumentException($"LoftqIterations must be at least 1 (got {LoftqIterations}).", nameof(LoftqIterations));
            var matching = EffectiveLoftqBits == 4 ? BaseQuantization.Nf4 : BaseQuantization.Int8;
            if (BaseQuantization != BaseQuantization.None && BaseQuantization != matching)
                throw new ArgumentException($"LoftQ with {EffectiveLoftqBits} bits approximates a {matching} base; the base is {BaseQuantization}. Set LoftqBits to match (4 for Nf4, 8 for Int8) or another base.", nameof(LoftqBits));
        }
        if (UseDora && Init is LoraInit.Pissa or LoraInit.Olora or LoraInit.Loftq)
            throw new ArgumentException($"Init = {Init} with UseDora is not supported: choose DoRA or the {Init} initialisation.", nameof(Init));
        if (LayersToTransform?.Any(l => l < 0) == true) throw new ArgumentException("Layer indices must be non-negative.", nameof(LayersToTransform));
        if (LayersPattern is { Count: > 0 } && LayersToTransform is not { Count: > 0 })
            throw new ArgumentException("LayersPattern names the module list whose indices LayersToTransform selects; set LayersToTransform too.", nameof(LayersPattern));
        if (LayersPattern?.Any(string.IsNullOrWhiteSpace) == true) throw new ArgumentException("LayersPattern entries must be module names.", nameof(LayersPattern));
        if (RankPattern is not null)
        {
            ModulePattern.Validate(RankPattern.Keys, nameof(RankPattern));
            if (RankPattern.FirstOrDefault(kv => kv.Value <= 0) is { Key: not null } bad)
                throw new ArgumentException($"RankPattern gives '{bad.Key}' rank {bad.Value}; ranks must be positive.", nameof(RankPattern));
        }
        if (AlphaPattern is not null)
        {
            ModulePattern.Validate(AlphaPattern.Keys, nameof(AlphaPattern));
            if (AlphaPattern.FirstOrDefault(kv => !(kv.Value > 0) || double.IsInfinity(kv.Value)) is { Key: not null } bad)
                throw new ArgumentException($"AlphaPattern gives '{bad.Key}' alpha {bad.Value}; alphas must be positive numbers.", nameof(AlphaPattern));
        }
        if (TargetModulesRegex != null)
        {
            try { _ = new System.Text.RegularExpressions.Regex(TargetModulesRegex); }
            catch (ArgumentException e) { throw new ArgumentException($"Target regex '{TargetModulesRegex}' is invalid: {e.Message}", nameof(TargetModulesRegex)); }
        }
    }

    /// <summary>A deep copy.</summary>
    public LoraOptions Clone()
    {
        var copy = (LoraOptions)MemberwiseClone();
        copy.TargetModules = TargetModules?.ToList();
        copy.LayersToTransform = LayersToTransform?.ToList();
        copy.ModulesToSave = ModulesToSave?.ToList();
        copy.LayersPattern = LayersPattern?.ToList();
        copy.RankPattern = RankPattern is null ? null : new Dictionary<string, int>(RankPattern);
        copy.AlphaPattern = AlphaPattern is null ? null : new Dictionary<string, double>(AlphaPattern);
        return copy;
    }
}
