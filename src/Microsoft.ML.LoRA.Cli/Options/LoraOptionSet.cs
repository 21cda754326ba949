using System.CommandLine;
using System.CommandLine.Parsing;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models.Quantization;

namespace Microsoft.ML.LoRA.Cli.Options;

// ML.NET has a namespace Microsoft.ML.Command, which would hide System.CommandLine.Command here.
using Command = System.CommandLine.Command;

/// <summary>
/// The LoRA options shared by every command that builds adapters (inspect, train, sweep): --rank, --alpha, --dropout,
/// --targets, --modules-to-save and the --lora-* switches. <see cref="Read"/> turns them into the library's <see cref="LoraOptions"/>.
/// </summary>
internal sealed class LoraOptionSet
{
    /// <summary>The --targets value that means "no LoRA at all".</summary>
    public const string None = "none";

    static readonly LoraOptions Defaults = new();

    public Option<int> Rank { get; } = new("--rank")
    {
        Description = $"LoRA rank r: the inner size of the low-rank update B·A",
        HelpName = "R",
        DefaultValueFactory = _ => Defaults.Rank,
        CustomParser = ValueParsers.Int("--rank", min: 1),
    };

    public Option<double> Alpha { get; } = new("--alpha")
    {
        Description = $"LoRA alpha: the update is scaled by alpha / r",
        HelpName = "A",
        DefaultValueFactory = _ => Defaults.Alpha,
        CustomParser = ValueParsers.Double("--alpha", a => a > 0, "a positive number"),
    };

    public Option<double> Dropout { get; } = new("--dropout")
    {
        Description = $"Dropout on the adapters' input while training, in [0, 1)",
        HelpName = "P",
        DefaultValueFactory = _ => Defaults.Dropout,
        CustomParser = ValueParsers.Double("--dropout", p => p >= 0 && p < 1, "a number in [0, 1)"),
    };

    public Option<string[]> Targets { get; } = new("--targets")
    {
        Description = "Linear layers to adapt, comma-separated: module names or dotted suffixes as in PEFT's target_modules " +
                      "(query,value / q_lin,v_lin / c_attn), 'all-linear', or 'none' for no LoRA",
        HelpName = "a,b,...",
        CustomParser = SplitCommas("--targets"),
    };

    public Option<string[]> ModulesToSave { get; } = new("--modules-to-save")
    {
        Description = "Modules trained in full and saved with the model, comma-separated names or dotted suffixes as in " +
                      "PEFT's modules_to_save, or 'none' [default: the head, and any module the checkpoint lacks such as a " +
                      "masked-LM checkpoint's pooler]",
        HelpName = "a,b,...",
        CustomParser = SplitCommas("--modules-to-save"),
    };

    public Option<int[]?> Layers { get; } = new("--layers")
    {
        Description = "Only adapt these transformer layers, comma-separated indices (PEFT's layers_to_transform)",
        HelpName = "i,j,...",
        CustomParser = ValueParsers.IntList("--layers", min: 0),
    };

    public Option<string[]> LayersPattern { get; } = new("--layers-pattern")
    {
        Description = "The module list --layers indexes (PEFT's layers_pattern): layer (BERT), layers (LLaMA), h (GPT-2) " +
                      "[default: the first of layer, layers, h, block, blocks in a module's name]",
        HelpName = "NAME",
        CustomParser = SplitCommas("--layers-pattern"),
    };

    public Option<Dictionary<string, int>?> RankPattern { get; } = new("--rank-pattern")
    {
        Description = "Ranks for particular modules (PEFT's rank_pattern): KEY=R pairs, comma-separated or repeated; a KEY is " +
                      "a module name or a regular expression matching the end of its name (value=16, layer\\.0\\..*=4)",
        HelpName = "KEY=R,...",
        CustomParser = result => Pairs<int>(result, "--rank-pattern", v => int.TryParse(v, out var r) && r >= 1 ? r : null, "a positive integer rank"),
    };

    public Option<Dictionary<string, double>?> AlphaPattern { get; } = new("--alpha-pattern")
    {
        Description = "Alphas for particular modules (PEFT's alpha_pattern): KEY=A pairs, keyed as --rank-pattern",
        HelpName = "KEY=A,...",
        CustomParser = result => Pairs<double>(result, "--alpha-pattern",
            v => double.TryParse(v, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var a) && a > 0 && double.IsFinite(a) ? a : null,
            "a positive number"),
    };

    public Option<LoraInit> Init { get; } = new("--init")
    {
        Description = "How the factors start: kaiming (PEFT's default), gaussian, pissa (from the weight's top singular vectors, " +
                      "the weight keeps the residual), olora (from its QR decomposition) or loftq (so that the quantized weight " +
                      "plus the update approximates the weight; see --loftq-bits)",
        HelpName = "kaiming|gaussian|pissa|olora|loftq",
        DefaultValueFactory = _ => Defaults.Init,
        CustomParser = OneOf("--init", "kaiming, gaussian, pissa, olora or loftq", LoraInit.KaimingUniform, new Dictionary<string, LoraInit>
        {
            ["kaiming"] = LoraInit.KaimingUniform, ["kaiming-uniform"] = LoraInit.KaimingUniform, ["gaussian"] = LoraInit.Gaussian,
            ["pissa"] = LoraInit.Pissa, ["olora"] = LoraInit.Olora, ["loftq"] = LoraInit.Loftq,
        }),
    };

    public Option<int?> LoftqBits { get; } = new("--loftq-bits")
    {
        Description = "LoftQ's quantization (PEFT's loftq_bits): 4 (NF4) or 8 (int8); with --init loftq [default: the base's: 8 with --quantize int8, else 4]",
        HelpName = "4|8",
        CustomParser = result => result.Tokens.Count > 0 && result.Tokens[^1].Value is "4" or "8"
            ? int.Parse(result.Tokens[^1].Value, System.Globalization.CultureInfo.InvariantCulture)
            : Fail<int?>(result, $"--loftq-bits: '{(result.Tokens.Count > 0 ? result.Tokens[^1].Value : "")}' is not 4 or 8.", null),
    };

    public Option<int> LoftqIterations { get; } = new("--loftq-iter")
    {
        Description = "LoftQ's alternating rounds of quantization and SVD (PEFT's loftq_iter); with --init loftq",
        HelpName = "N",
        DefaultValueFactory = _ => Defaults.LoftqIterations,
        CustomParser = ValueParsers.Int("--loftq-iter", min: 1),
    };

    public Option<BaseQuantization> Quantize { get; } = new("--quantize")
    {
        Description = "Keep the frozen base's transformer linear weights quantized in memory (QLoRA): nf4 or fp4 (blocks of 64), " +
                      "int8 (per row), bf16 or fp16 (16 bits), or none (a bf16/fp16 checkpoint still keeps its own 16 bits under " +
                      "LoRA). Adapters, head, embeddings and norms stay fp32",
        HelpName = "none|nf4|fp4|int8|bf16|fp16",
        DefaultValueFactory = _ => Defaults.BaseQuantization,
        CustomParser = OneOf("--quantize", "none, nf4, fp4, int8, bf16 or fp16", BaseQuantization.None, new Dictionary<string, BaseQuantization>
        {
            ["none"] = BaseQuantization.None, ["nf4"] = BaseQuantization.Nf4, ["fp4"] = BaseQuantization.Fp4, ["int8"] = BaseQuantization.Int8,
            ["bf16"] = BaseQuantization.BFloat16, ["fp16"] = BaseQuantization.Float16,
        }),
    };

    public Option<bool> DoubleQuantization { get; } = new("--double-quant")
    {
        Description = "Quantize the 4-bit base's block scales again (QLoRA's double quantization): about 4.13 instead of 4.5 bits per weight",
    };

    /// <summary>The options of a quantized base (--quantize, --double-quant), which only commands that load a base for a fit take.</summary>
    public IEnumerable<Option> QuantizationOptions => new Option[] { Quantize, DoubleQuantization };

    /// <summary>
    /// The options that choose the adapter variant rather than its size or targets (--init, --loftq-bits, --loftq-iter,
    /// --dora, --quantize, --double-quant): a sweep takes these alone and applies them to every trial.
    /// </summary>
    public IEnumerable<Option> VariantOptions => new Option[] { Init, LoftqBits, LoftqIterations, Dora }.Concat(QuantizationOptions);

    /// <summary>Adds <see cref="VariantOptions"/> and their validator to <paramref name="command"/>.</summary>
    public void AddVariantsTo(Command command)
    {
        foreach (var option in VariantOptions) command.Options.Add(option);
        command.Validators.Add(result =>
        {
            if (result.GetResult(DoubleQuantization) is { Implicit: false } dq && IsOn(dq)
                && (result.GetResult(Quantize) is not { Implicit: false } q || q.Tokens.Count == 0 || q.Tokens[^1].Value.ToLowerInvariant() is not ("nf4" or "fp4")))
                result.AddError("--double-quant quantizes the block scales of a 4-bit base; give --quantize nf4 or fp4 too.");
        });
    }

    /// <summary>Sets the variant options of <paramref name="options"/> from the command line (those a command took).</summary>
    public void ReadVariants(ParseResult parseResult, LoraOptions options)
    {
        options.UseDora = parseResult.GetValue(Dora);
        options.Init = parseResult.GetValue(Init);
        options.LoftqBits = parseResult.GetValue(LoftqBits);
        options.LoftqIterations = parseResult.GetValue(LoftqIterations);
        options.BaseQuantization = parseResult.GetResult(Quantize) is null ? Defaults.BaseQuantization : parseResult.GetValue(Quantize);
        options.DoubleQuantization = parseResult.GetResult(DoubleQuantization) is not null && parseResult.GetValue(DoubleQuantization);
    }

    /// <summary>
    /// A parser for one of <paramref name="words"/> (case-insensitive; the last token counts); anything else is a parse
    /// error saying the value is not one of <paramref name="shown"/>.
    /// </summary>
    static Func<ArgumentResult, T> OneOf<T>(string option, string shown, T fallback, IReadOnlyDictionary<string, T> words) => result =>
    {
        var word = result.Tokens.Count > 0 ? result.Tokens[^1].Value.ToLowerInvariant() : "";
        return words.TryGetValue(word, out var value) ? value : Fail(result, $"{option}: '{word}' is not {shown}.", fallback);
    };

    static T Fail<T>(ArgumentResult result, string message, T fallback)
    {
        result.AddError(message);
        return fallback;
    }

    public Option<bool> Dora { get; } = new("--dora")
    {
        Description = "DoRA (PEFT's use_dora): train a magnitude per output beside the low-rank direction update",
    };

    public Option<bool> Query { get; } = new("--lora-query") { Description = "Adapt the attention query projection (query, q_lin; GPT-2: c_attn)" };
    public Option<bool> Key { get; } = new("--lora-key") { Description = "Adapt the attention key projection (key, k_lin; GPT-2: c_attn)" };
    public Option<bool> Value { get; } = new("--lora-value") { Description = "Adapt the attention value projection (value, v_lin; GPT-2: c_attn)" };
    public Option<bool> Projection { get; } = new("--lora-projection") { Description = "Adapt the attention output projection (attention.output.dense, out_lin, attn.c_proj)" };
    public Option<bool> Mlp { get; } = new("--lora-mlp") { Description = "Adapt both feed-forward layers (intermediate/output.dense, ffn.lin1/lin2, mlp.c_fc/c_proj)" };
    public Option<bool> Head { get; } = new("--lora-head") { Description = "Put adapters on the classification head instead of training it in full" };

    IEnumerable<Option<bool>> Switches => new[] { Query, Key, Value, Projection, Mlp, Head };

    /// <summary>Adds the options and their validators to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { Rank, Alpha, Dropout, Targets, ModulesToSave, Layers, LayersPattern, RankPattern, AlphaPattern }.Concat(Switches))
            command.Options.Add(option);
        AddVariantsTo(command);
        command.Validators.Add(result =>
        {
            if (result.GetResult(LayersPattern) is { Implicit: false } && result.GetResult(Layers) is null)
                result.AddError("--layers-pattern names the module list --layers indexes; give --layers too.");
        });
        command.Validators.Add(result =>
        {
            // Read tokens, not values: a value that failed to parse has its own error, and GetValue would throw.
            var targets = result.GetResult(Targets)?.Tokens.SelectMany(t => Split(t.Value)).ToList();
            if (targets is null || !targets.Any(IsNone)) return;
            if (targets.Count > 1 || Switches.Any(s => result.GetResult(s) is { Implicit: false } r && IsOn(r)))
                result.AddError("--targets none means no LoRA; it cannot be combined with other targets or --lora-* switches.");
        });
    }

    /// <summary>The library options these command-line options describe.</summary>
    public LoraOptions Read(ParseResult parseResult, NoTargetsMeans whenNoTargets)
    {
        var options = new LoraOptions
        {
            Rank = parseResult.GetValue(Rank),
            Alpha = parseResult.GetValue(Alpha),
            Dropout = parseResult.GetValue(Dropout),
            LoraQuery = parseResult.GetValue(Query),
            LoraKey = parseResult.GetValue(Key),
            LoraValue = parseResult.GetValue(Value),
            LoraProjection = parseResult.GetValue(Projection),
            LoraMlp = parseResult.GetValue(Mlp),
            LoraHead = parseResult.GetValue(Head),
            LayersToTransform = parseResult.GetValue(Layers)?.ToList(),
            LayersPattern = parseResult.GetResult(LayersPattern) is null ? null : parseResult.GetValue(LayersPattern)!.ToList(),
            RankPattern = parseResult.GetValue(RankPattern),
            AlphaPattern = parseResult.GetValue(AlphaPattern),
        };
        ReadVariants(parseResult, options);
        var targets = parseResult.GetResult(Targets) is null ? null : parseResult.GetValue(Targets);
        bool anySwitch = Switches.Any(s => parseResult.GetValue(s));
        if (parseResult.GetResult(ModulesToSave) is not null)
        {
            var modules = parseResult.GetValue(ModulesToSave)!;
            options.ModulesToSave = modules.Any(IsNone) ? new List<string>() : modules.ToList();
        }
        if (targets is not null)
            options.TargetModules = targets.Any(IsNone) ? new List<string>() : targets.ToList();
        else if (!anySwitch && whenNoTargets == NoTargetsMeans.NoAdapters)
            options.TargetModules = new List<string>();
        return options;
    }

    static bool IsOn(OptionResult flag) =>
        flag.Tokens.Count == 0 || !bool.TryParse(flag.Tokens[^1].Value, out bool on) || on;

    static bool IsNone(string target) => string.Equals(target, None, StringComparison.OrdinalIgnoreCase);

    static string[] Split(string value) => value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>
    /// KEY=VALUE pairs from every token, split at the commas that end a pair (a comma inside a key's regular expression,
    /// as in <c>{1,2}</c>, stays in the key); the first occurrence of a key wins, as in PEFT's ordered patterns.
    /// </summary>
    static Dictionary<string, T>? Pairs<T>(ArgumentResult result, string option, Func<string, T?> parse, string rule) where T : struct
    {
        var pairs = new Dictionary<string, T>(StringComparer.Ordinal);
        foreach (var token in result.Tokens)
        {
            var pieces = new List<string>();
            var pending = "";
            foreach (var piece in token.Value.Split(','))
            {
                if (piece.Contains('=')) { pieces.Add(pending + piece); pending = ""; }
                else pending += piece + ",";   // a comma inside the key's regular expression
            }
            if (pending.Trim(',', ' ').Length > 0) pieces.Add(pending.TrimEnd(','));
            foreach (var piece in pieces.Select(p => p.Trim()).Where(p => p.Length > 0))
            {
                int eq = piece.LastIndexOf('=');
                if (eq <= 0 || parse(piece[(eq + 1)..].Trim()) is not T value)
                {
                    result.AddError($"{option}: '{piece}' is not KEY=VALUE with {rule}.");
                    return null;
                }
                pairs.TryAdd(piece[..eq].Trim(), value);
            }
        }
        return pairs;
    }

    static Func<ArgumentResult, string[]> SplitCommas(string option) => result =>
    {
        var names = result.Tokens.SelectMany(t => Split(t.Value)).ToArray();
        if (names.Length == 0) result.AddError($"{option} needs at least one module name (or 'none').");
        return names;
    };
}
