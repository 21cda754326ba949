using Microsoft.ML.LoRA.MLNet;

namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// The values a sweep tries: a list per hyper-parameter and a <see cref="SwitchChoice"/> per LoRA target switch. A
/// null list is not searched (every trial takes the base options' value). The grid is the cross product of all lists
/// and of the switches' choices (<see cref="SwitchChoice.Both"/> doubles it), e.g. 6 alphas x 6 ranks x 4 switches on
/// Both = 576 configurations.
/// <para>
/// Targets: when any switch is not <see cref="SwitchChoice.Inherit"/>, each trial adapts exactly the switches that are
/// on, an Inherit switch taking the base options' effective value (every transformer-layer linear when the base names no target);
/// a trial with every switch off adapts nothing and trains only the head. The base options must then not select
/// targets by module name or regex. When every switch is Inherit, trials use the base options' targets unchanged.
/// </para>
/// </summary>
public sealed class LoraSearchSpace
{
    /// <summary>LoRA ranks to try; null keeps the base options' rank.</summary>
    public IList<int>? Ranks { get; set; }
    /// <summary>LoRA alphas to try; null keeps the base options' alpha.</summary>
    public IList<double>? Alphas { get; set; }
    /// <summary>LoRA dropouts to try, each in [0, 1); null keeps the base options' dropout.</summary>
    public IList<double>? Dropouts { get; set; }
    /// <summary>Peak learning rates to try; null keeps the base options' rate.</summary>
    public IList<double>? LearningRates { get; set; }
    /// <summary>Epoch counts to try; null keeps the base options' epochs. Must be null for successive halving, which sets the epochs itself.</summary>
    public IList<int>? Epochs { get; set; }

    /// <summary>The attention query switch.</summary>
    public SwitchChoice LoraQuery { get; set; }
    /// <summary>The attention key switch.</summary>
    public SwitchChoice LoraKey { get; set; }
    /// <summary>The attention value switch.</summary>
    public SwitchChoice LoraValue { get; set; }
    /// <summary>The attention output projection switch.</summary>
    public SwitchChoice LoraProjection { get; set; }
    /// <summary>The feed-forward (MLP) switch.</summary>
    public SwitchChoice LoraMlp { get; set; }
    /// <summary>The classification head switch.</summary>
    public SwitchChoice LoraHead { get; set; }

    SwitchChoice[] Switches => new[] { LoraQuery, LoraKey, LoraValue, LoraProjection, LoraMlp, LoraHead };

    /// <summary>True when any switch is not <see cref="SwitchChoice.Inherit"/>: trials then set their targets exactly.</summary>
    public bool SweepsTargets => Switches.Any(s => s != SwitchChoice.Inherit);

    /// <summary>Number of configurations in the grid.</summary>
    public long Count
    {
        get
        {
            Validate();
            long count = 1;
            checked
            {
                foreach (var n in new[] { Ranks?.Count, Alphas?.Count, Dropouts?.Count, LearningRates?.Count, Epochs?.Count }) count *= n ?? 1;
                foreach (var s in Switches) if (s == SwitchChoice.Both) count *= 2;
            }
            return count;
        }
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first list that is empty, repeats a value or holds a value out of range, or when nothing is searched.</summary>
    public void Validate()
    {
        CheckList(Ranks, nameof(Ranks), r => r >= 1, "must be at least 1");
        CheckList(Alphas, nameof(Alphas), a => a > 0 && double.IsFinite(a), "must be a positive number");
        CheckList(Dropouts, nameof(Dropouts), d => d >= 0 && d < 1, "must be in [0, 1)");
        CheckList(LearningRates, nameof(LearningRates), l => l > 0 && double.IsFinite(l), "must be a positive number");
        CheckList(Epochs, nameof(Epochs), e => e >= 1, "must be at least 1");
        foreach (var (choice, name) in Switches.Zip(new[] { nameof(LoraQuery), nameof(LoraKey), nameof(LoraValue), nameof(LoraProjection), nameof(LoraMlp), nameof(LoraHead) }))
            if (!Enum.IsDefined(choice)) throw new ArgumentException($"{name} has the undefined choice {(int)choice}.", name);
        if (Ranks is null && Alphas is null && Dropouts is null && LearningRates is null && Epochs is null && !SweepsTargets)
            throw new ArgumentException(
                "The search space is empty: it lists no values and sets no target switch. Set at least one of Ranks, Alphas, " +
                "Dropouts, LearningRates, Epochs or a Lora* switch (On, Off or Both).");
    }

    /// <summary>Every configuration of the grid, in a fixed order (rank varies slowest, then alpha, dropout, learning rate, epochs, then the switches q, k, v, o, mlp, head).</summary>
    public IReadOnlyList<TrialConfiguration> Expand(LoraTextClassifierOptions baseOptions)
    {
        long count = Count;
        if (count > int.MaxValue) throw new InvalidOperationException($"The grid has {count:N0} configurations, too many to list; sample it with a random strategy.");
        var axes = Resolve(baseOptions);
        return Enumerable.Range(0, (int)count).Select(i => axes.At(i)).ToList();
    }

    /// <summary>
    /// <paramref name="count"/> distinct configurations drawn uniformly from the grid with a seeded generator: the same
    /// space, base options, count and seed give the same list in the same order. When <paramref name="count"/> is at
    /// least the grid size, the whole grid in a seeded random order.
    /// </summary>
    public IReadOnlyList<TrialConfiguration> Sample(LoraTextClassifierOptions baseOptions, int count, int seed)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), $"The number of sampled configurations must be at least 1 (got {count}).");
        long size = Count;
        var axes = Resolve(baseOptions);
        var random = new Random(seed);
        if (count >= size)
        {
            var all = Enumerable.Range(0, (int)size).ToArray();
            random.Shuffle(all);
            return all.Select(i => axes.At(i)).ToList();
        }
        var seen = new HashSet<long>();
        var picked = new List<TrialConfiguration>(count);
        while (picked.Count < count)
        {
            long index = random.NextInt64(size);
            if (seen.Add(index)) picked.Add(axes.At(index));
        }
        return picked;
    }

    Axes Resolve(LoraTextClassifierOptions baseOptions)
    {
        ArgumentNullException.ThrowIfNull(baseOptions);
        var lora = baseOptions.Lora ?? throw new ArgumentException("The base options have no Lora settings (Lora is null).", nameof(baseOptions));
        bool[][]? switches = null;
        if (SweepsTargets)
        {
            var inherited = LoraTargetSwitches.EffectiveOf(lora) ?? throw new ArgumentException(
                "The search space sets LoRA target switches but the base options select targets by module name or regex " +
                $"(TargetModules = [{string.Join(", ", lora.TargetModules ?? Array.Empty<string>())}], TargetModulesRegex = {lora.TargetModulesRegex ?? "null"}). " +
                "Clear them in the base options, or leave every switch on Inherit.", nameof(baseOptions));
            var inheritedValues = new[] { inherited.Query, inherited.Key, inherited.Value, inherited.Projection, inherited.Mlp, inherited.Head };
            switches = Switches.Select((choice, i) => choice switch
            {
                SwitchChoice.Inherit => new[] { inheritedValues[i] },
                SwitchChoice.Off => new[] { false },
                SwitchChoice.On => new[] { true },
                _ => new[] { false, true },
            }).ToArray();
        }
        return new Axes(
            (Ranks ?? new[] { lora.Rank }).ToArray(),
            (Alphas ?? new[] { lora.Alpha }).ToArray(),
            (Dropouts ?? new[] { lora.Dropout }).ToArray(),
            (LearningRates ?? new[] { baseOptions.LearningRate }).ToArray(),
            (Epochs ?? new[] { baseOptions.Epochs }).ToArray(),
            switches);
    }

    static void CheckList<T>(IList<T>? values, string name, Func<T, bool> valid, string rule)
    {
        if (values is null) return;
        if (values.Count == 0) throw new ArgumentException($"{name} is empty: list at least one value, or leave it null to keep the base options' value.", name);
        foreach (var v in values)
            if (!valid(v)) throw new ArgumentException($"{name}: every value {rule} (got {v}).", name);
        var repeated = values.GroupBy(v => v).FirstOrDefault(g => g.Count() > 1);
        if (repeated is not null) throw new ArgumentException($"{name} lists {repeated.Key} more than once.", name);
    }

    /// <summary>The resolved value lists; configuration <c>i</c> of the grid is a mixed-radix decoding of i (last axis fastest).</summary>
    sealed record Axes(int[] Ranks, double[] Alphas, double[] Dropouts, double[] LearningRates, int[] Epochs, bool[][]? Switches)
    {
        public TrialConfiguration At(long index)
        {
            LoraTargetSwitches? targets = null;
            if (Switches is { } s)
            {
                var on = new bool[6];
                for (int i = 5; i >= 0; i--) on[i] = s[i][(int)Take(ref index, s[i].Length)];
                targets = new LoraTargetSwitches(on[0], on[1], on[2], on[3], on[4], on[5]);
            }
            int epochs = Epochs[Take(ref index, Epochs.Length)];
            double learningRate = LearningRates[Take(ref index, LearningRates.Length)];
            double dropout = Dropouts[Take(ref index, Dropouts.Length)];
            double alpha = Alphas[Take(ref index, Alphas.Length)];
            int rank = Ranks[Take(ref index, Ranks.Length)];
            return new TrialConfiguration(rank, alpha, dropout, learningRate, epochs, targets);
        }

        static int Take(ref long index, int radix)
        {
            int digit = (int)(index % radix);
            index /= radix;
            return digit;
        }
    }
}
