using Microsoft.ML.LoRA.Checkpoints;
using Microsoft.ML.LoRA.Hub;
using Microsoft.ML.LoRA.Lora;
using Microsoft.ML.LoRA.Models;
using Microsoft.ML.LoRA.Models.Quantization;
using Microsoft.ML.LoRA.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.LoRA.Inference;

/// <summary>
/// One base model and many PEFT adapters held in memory side by side, as PEFT serves them
/// (<c>load_adapter(path, adapter_name)</c>, <c>set_adapter</c>, <c>delete_adapter</c>, and <c>adapter_names=[...]</c>
/// for a batch whose rows want different adapters). The base model is loaded once; each adapter adds only its own
/// tensors: its LoRA factors (and DoRA magnitudes) and its saved modules, such as its classification head, which are
/// swapped in with it. <see cref="BaseModelName"/> (<c>"__base__"</c>) scores with the base model alone.
/// </summary>
/// <remarks>
/// <para>
/// Adapters may differ in rank, targets, <c>rank_pattern</c>/<c>alpha_pattern</c>, rsLoRA and DoRA. Refused, with
/// the reason: an adapter whose initialisation changed the base weight (<c>init_lora_weights</c> PiSSA, OLoRA, LoftQ,
/// CorDA: it runs only on its own residual base), and an adapter whose saved head scores another number of labels than
/// the base model (the set scores one set of labels; open it with <c>numLabels</c> matching the adapters).
/// </para>
/// <para>
/// Thread safety: every member may be called from several threads. Calls run one at a time (a lock covers switching the
/// adapter and scoring with it), so concurrent scoring is correct but not parallel.
/// </para>
/// </remarks>
public sealed class LoraAdapterSet : IDisposable
{
    /// <summary>The name that selects the base model without any adapter (PEFT's <c>"__base__"</c>).</summary>
    public const string BaseModelName = "__base__";

    readonly object _gate = new();
    readonly SequenceClassifier _model;
    readonly ClassifierScorer _scorer;
    readonly Dictionary<string, LoraLinear> _layers;
    readonly Dictionary<string, TorchSharp.Modules.Parameter> _parameters;
    readonly Dictionary<string, SetAdapter> _adapters = new(StringComparer.Ordinal);
    readonly List<string> _order = new();
    /// <summary>The base model's own values of the parameters some adapter replaces, by parameter name.</summary>
    readonly Dictionary<string, Tensor> _baseValues = new(StringComparer.Ordinal);
    /// <summary>The adapter the model carries now (null: none, the base model).</summary>
    SetAdapter? _attached;
    string _active = BaseModelName;
    bool _disposed;

    /// <summary>
    /// A set over <paramref name="baseModel"/>, which it owns from now on (disposing the set disposes it). Texts are
    /// tokenized by <paramref name="encoder"/> and scored <paramref name="batchSize"/> at a time.
    /// </summary>
    /// <exception cref="ArgumentException">The model already carries adapters.</exception>
    public LoraAdapterSet(SequenceClassifier baseModel, ITextEncoder encoder, int batchSize = 32)
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        ArgumentNullException.ThrowIfNull(encoder);
        _layers = LoraInjector.LinearLayers(baseModel);
        if (_layers.Values.Any(l => l.HasAdapter))
            throw new ArgumentException("The base model already carries adapters; a set needs the base model alone (add adapters with Add).", nameof(baseModel));
        _model = baseModel;
        _scorer = new ClassifierScorer(baseModel, encoder, batchSize);
        _parameters = baseModel.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        Encoder = encoder;
        BatchSize = batchSize;
        baseModel.eval();
    }

    /// <summary>
    /// Loads the base model in <paramref name="baseModelPath"/> (a Hugging Face folder or Hub id) with its tokenizer.
    /// </summary>
    /// <param name="baseModelPath">The base model the adapters were trained on.</param>
    /// <param name="numLabels">Outputs of the classification head; default: the config's num_labels.</param>
    /// <param name="maxSequenceLength">Most tokens per text; default: 256 or the model's limit if lower (as training).</param>
    /// <param name="batchSize">Texts per model batch when scoring.</param>
    /// <param name="hub">Where to find a Hub id (cache, endpoint, token); default: the environment's.</param>
    /// <param name="quantization">
    /// Keep the base's transformer layers quantized (QLoRA's base: one packed base under every adapter); adapters
    /// trained on a quantized base score as they did in training only over the same quantization.
    /// </param>
    public static LoraAdapterSet Open(string baseModelPath, int? numLabels = null, int? maxSequenceLength = null, int batchSize = 32,
        HubOptions? hub = null, QuantizedBase? quantization = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(baseModelPath);
        var folder = CheckpointFolder.Open(Path.GetFullPath(ModelLocator.Resolve(baseModelPath, hub)));
        var encoder = TextEncoders.FromFolder(folder.Directory, folder.Config,
            maxSequenceLength ?? Math.Min(256, TextEncoders.ModelMaxLength(folder.Config)));
        var model = PretrainedModel.Load(folder, numLabels, quantization: quantization);
        try { return new LoraAdapterSet(model, encoder, batchSize); }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The tokenizer texts go through.</summary>
    public ITextEncoder Encoder { get; }

    /// <summary>Texts per model batch when scoring.</summary>
    public int BatchSize { get; }

    /// <summary>The classes every adapter of the set scores.</summary>
    public int NumLabels => _model.NumLabels;

    /// <summary>The base model's configuration.</summary>
    public TransformerConfig Config => _model.Config;

    /// <summary>The adapters' names, in the order they were added (<see cref="BaseModelName"/> is not listed).</summary>
    public IReadOnlyList<string> Names
    {
        get { lock (_gate) return _order.ToArray(); }
    }

    /// <summary>The adapter scoring calls use when they name none (<see cref="Use"/>); <see cref="BaseModelName"/> at first.</summary>
    public string ActiveAdapter
    {
        get { lock (_gate) return _active; }
    }

    /// <summary>True when an adapter of that name is in the set (always for <see cref="BaseModelName"/>).</summary>
    public bool Contains(string name)
    {
        lock (_gate) return name == BaseModelName || _adapters.ContainsKey(name);
    }

    /// <summary>What the adapter's folder held (rank, alpha, adapted layers, saved tensors, config).</summary>
    /// <exception cref="ArgumentException">No adapter has that name.</exception>
    public PeftAdapterInfo AdapterInfo(string name)
    {
        lock (_gate) return Find(name).Info;
    }

    /// <summary>
    /// The memory the adapter adds to the set, in bytes: its factors, DoRA magnitudes and its own values of the base
    /// parameters it replaces (saved head, trained biases).
    /// </summary>
    /// <exception cref="ArgumentException">No adapter has that name.</exception>
    public long AdapterBytes(string name)
    {
        lock (_gate) return Find(name).Bytes;
    }

    /// <summary>
    /// Reads the PEFT adapter in <paramref name="adapterFolder"/> (adapter_config.json + adapter_model.safetensors) into
    /// the set under <paramref name="name"/>, beside the adapters already there; the base model is not reloaded. On
    /// failure the set is left as it was.
    /// </summary>
    /// <returns>What the folder held.</returns>
    /// <exception cref="ArgumentException">The name is empty, <see cref="BaseModelName"/>, or taken.</exception>
    /// <exception cref="NotSupportedException">The adapter's initialisation changed the base weight (PiSSA, OLoRA, LoftQ, CorDA).</exception>
    /// <exception cref="CheckpointFormatException">The adapter does not fit the base model (other layer shapes, another number of labels) or its files are malformed.</exception>
    public PeftAdapterInfo Add(string name, string adapterFolder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentException.ThrowIfNullOrWhiteSpace(adapterFolder);
        if (name == BaseModelName)
            throw new ArgumentException($"'{BaseModelName}' names the base model without an adapter; give the adapter another name.", nameof(name));
        lock (_gate)
        {
            ThrowIfDisposed();
            if (_adapters.ContainsKey(name))
                throw new ArgumentException($"The set already holds an adapter named '{name}' (from {_adapters[name].Folder}); remove it first or choose another name.", nameof(name));
            var preview = AdapterFolderPreview.Read(adapterFolder);
            RefuseBaseChangingInit(name, adapterFolder, preview);
            RefuseOtherShapes(adapterFolder, preview);

            var previous = _attached;
            SwitchTo(null);
            var snapshotted = SnapshotBaseValues(preview);
            try
            {
                var adapter = Read(name, adapterFolder);
                _adapters.Add(name, adapter);
                _order.Add(name);
                return adapter.Info;
            }
            catch
            {
                ClearFailedLoad();
                foreach (var parameter in snapshotted)
                    if (_baseValues.Remove(parameter, out var value)) value.Dispose();
                throw;
            }
            finally
            {
                SwitchTo(previous);
            }
        }
    }

    /// <summary>
    /// Removes the adapter and frees its tensors (PEFT's <c>delete_adapter</c>); later use of its name fails. When it was
    /// the active adapter, the base model (<see cref="BaseModelName"/>) becomes active.
    /// </summary>
    /// <exception cref="ArgumentException">No adapter has that name.</exception>
    public void Remove(string name)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            var adapter = Find(name);
            if (ReferenceEquals(_attached, adapter)) SwitchTo(null);
            if (_active == name) _active = BaseModelName;
            _adapters.Remove(name);
            _order.Remove(name);
            adapter.Dispose();
            foreach (var parameter in _baseValues.Keys.Where(p => !_adapters.Values.Any(a => a.SavedValues.ContainsKey(p))).ToList())
                if (_baseValues.Remove(parameter, out var value)) value.Dispose();
        }
    }

    /// <summary>Makes <paramref name="name"/> the adapter that scoring calls without an adapter name use (PEFT's <c>set_adapter</c>).</summary>
    /// <exception cref="ArgumentException">No adapter has that name.</exception>
    public void Use(string name)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            SwitchTo(Resolve(name));
            _active = name;
        }
    }

    /// <summary>Logits [texts][classes] of texts (and second texts of pairs) with the active adapter (<see cref="Use"/>).</summary>
    public float[][] Logits(IReadOnlyList<string?> texts, IReadOnlyList<string?>? pairs = null)
    {
        lock (_gate) return Logits(_active, texts, pairs);
    }

    /// <summary>Logits [texts][classes] of texts (and second texts of pairs) with the adapter <paramref name="adapterName"/>.</summary>
    /// <exception cref="ArgumentException">No adapter has that name.</exception>
    public float[][] Logits(string adapterName, IReadOnlyList<string?> texts, IReadOnlyList<string?>? pairs = null) =>
        Logits(adapterName, Encode(texts, pairs));

    /// <summary>Logits [examples][classes] of already encoded examples with the adapter <paramref name="adapterName"/>.</summary>
    /// <exception cref="ArgumentException">No adapter has that name.</exception>
    public float[][] Logits(string adapterName, IReadOnlyList<EncodedText> encoded)
    {
        ArgumentNullException.ThrowIfNull(encoded);
        lock (_gate)
        {
            ThrowIfDisposed();
            SwitchTo(Resolve(adapterName));
            return _scorer.Logits(encoded);
        }
    }

    /// <summary>
    /// Logits [texts][classes] where row i is scored with adapter <paramref name="adapterNames"/>[i] (PEFT's
    /// <c>adapter_names</c>; <see cref="BaseModelName"/> for the base model): the rows are grouped by adapter, each
    /// group runs with its adapter, and the rows come back in the order given.
    /// </summary>
    /// <exception cref="ArgumentException">A row names no adapter of the set, or the lists differ in length.</exception>
    public float[][] LogitsPerRow(IReadOnlyList<string> adapterNames, IReadOnlyList<string?> texts, IReadOnlyList<string?>? pairs = null) =>
        LogitsPerRow(adapterNames, Encode(texts, pairs));

    /// <summary>Logits of already encoded examples, row i with adapter <paramref name="adapterNames"/>[i] (see the text overload).</summary>
    /// <exception cref="ArgumentException">A row names no adapter of the set, or the lists differ in length.</exception>
    public float[][] LogitsPerRow(IReadOnlyList<string> adapterNames, IReadOnlyList<EncodedText> encoded)
    {
        ArgumentNullException.ThrowIfNull(adapterNames);
        ArgumentNullException.ThrowIfNull(encoded);
        if (adapterNames.Count != encoded.Count)
            throw new ArgumentException($"{adapterNames.Count} adapter names for {encoded.Count} rows; give one name per row.", nameof(adapterNames));
        lock (_gate)
        {
            ThrowIfDisposed();
            var groups = new Dictionary<string, List<int>>(StringComparer.Ordinal);
            for (int i = 0; i < adapterNames.Count; i++)
            {
                var name = adapterNames[i] ?? throw new ArgumentException($"Row {i} names no adapter; use \"{BaseModelName}\" for the base model.", nameof(adapterNames));
                Resolve(name, $"row {i}");
                if (!groups.TryGetValue(name, out var rows)) groups[name] = rows = new List<int>();
                rows.Add(i);
            }
            var result = new float[encoded.Count][];
            NonFiniteScoreException? first = null;
            // The adapter the model carries now goes first: one switch fewer.
            foreach (var (name, rows) in groups.OrderBy(g => ReferenceEquals(Resolve(g.Key), _attached) ? 0 : 1))
            {
                SwitchTo(Resolve(name));
                try
                {
                    var logits = _scorer.Logits(rows.Select(i => encoded[i]).ToList());
                    for (int j = 0; j < rows.Count; j++) result[rows[j]] = logits[j];
                }
                catch (NonFiniteScoreException e)
                {
                    // Named by its row in this call; every group is scored so that the first such row is named.
                    if (first is null || rows[(int)e.Example] < first.Example) first = e.At(rows[(int)e.Example]);
                }
            }
            return first is null ? result : throw first;
        }
    }

    /// <summary>Frees the base model and every adapter. Later calls throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            SwitchTo(null);
            foreach (var adapter in _adapters.Values) adapter.Dispose();
            _adapters.Clear();
            _order.Clear();
            foreach (var value in _baseValues.Values) value.Dispose();
            _baseValues.Clear();
            _model.Dispose();
        }
    }

    IReadOnlyList<EncodedText> Encode(IReadOnlyList<string?> texts, IReadOnlyList<string?>? pairs)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (pairs is not null && pairs.Count != texts.Count)
            throw new ArgumentException($"{texts.Count} texts and {pairs.Count} second texts; pairs need one of each per row.", nameof(pairs));
        var encoded = new EncodedText[texts.Count];
        for (int i = 0; i < encoded.Length; i++) encoded[i] = Encoder.Encode(texts[i], pairs?[i]);
        return encoded;
    }

    /// <summary>The adapter a name selects: null for <see cref="BaseModelName"/>.</summary>
    SetAdapter? Resolve(string name, string? where = null) => name == BaseModelName ? null : Find(name, where);

    SetAdapter Find(string name, string? where = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ThrowIfDisposed();
        if (_adapters.TryGetValue(name, out var adapter)) return adapter;
        var held = _order.Count == 0 ? "no adapters" : string.Join(", ", _order.Select(n => $"'{n}'"));
        throw new ArgumentException($"{(where is null ? "" : where + ": ")}the set has no adapter named '{name}'; it holds {held} (and \"{BaseModelName}\", the base model alone).", nameof(name));
    }

    /// <summary>Puts <paramref name="next"/> on the model (null: the base model alone), taking off the one there now.</summary>
    void SwitchTo(SetAdapter? next)
    {
        if (ReferenceEquals(next, _attached)) return;
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        if (_attached is { } current)
        {
            foreach (var layer in current.Layers.Keys) _layers[layer].Detach();
            foreach (var parameter in current.SavedValues.Keys)
                if (next is null || !next.SavedValues.ContainsKey(parameter)) _parameters[parameter].copy_(_baseValues[parameter]);
            _attached = null;
        }
        if (next is not null)
        {
            foreach (var (layer, adapter) in next.Layers) _layers[layer].Attach(adapter);
            foreach (var (parameter, value) in next.SavedValues) _parameters[parameter].copy_(value);
            _attached = next;
        }
    }

    /// <summary>
    /// Loads the folder into the bare model with <see cref="PeftAdapter.Load"/>, then takes what it attached and wrote
    /// off again: the layers' adapters, and its values of saved parameters (the base's own go back).
    /// </summary>
    SetAdapter Read(string name, string folder)
    {
        var info = PeftAdapter.Load(_model, folder);
        var saved = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using (var scope = torch.NewDisposeScope())
        using (torch.no_grad())
        {
            foreach (var parameter in info.SavedTensors.Distinct())
            {
                if (!_baseValues.TryGetValue(parameter, out var baseValue))
                    throw new InvalidOperationException($"loading {folder} wrote '{parameter}', which its file listing did not show; the adapter was not added");
                saved[parameter] = _parameters[parameter].detach().clone();
                _parameters[parameter].copy_(baseValue);
            }
            scope.Detach(saved.Values);
        }
        var layers = _layers.Where(l => l.Value.HasAdapter).ToDictionary(l => l.Key, l => l.Value.Detach(), StringComparer.Ordinal);
        return new SetAdapter(name, folder, info, layers, saved);
    }

    /// <summary>Keeps the base model's values of the parameters the adapter's file overwrites; returns those newly kept.</summary>
    List<string> SnapshotBaseValues(AdapterFolderPreview preview)
    {
        var kept = new List<string>();
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        foreach (var (_, parameter, _) in preview.BaseTensors)
        {
            if (_baseValues.ContainsKey(parameter) || !_parameters.TryGetValue(parameter, out var value)) continue;
            _baseValues[parameter] = value.detach().clone().DetachFromDisposeScope();
            kept.Add(parameter);
        }
        return kept;
    }

    /// <summary>After a failed load: takes off whatever it attached and puts the base's values back where it may have written.</summary>
    void ClearFailedLoad()
    {
        foreach (var layer in _layers.Values.Where(l => l.HasAdapter))
            foreach (var (_, module) in layer.Detach().Modules) module.Dispose();
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        foreach (var (parameter, value) in _baseValues) _parameters[parameter].copy_(value);
    }

    static void RefuseBaseChangingInit(string name, string folder, AdapterFolderPreview preview)
    {
        if (preview.BaseChangingInit is not { } init) return;
        throw new NotSupportedException(
            $"Adapter '{name}' ({folder}) was initialised with init_lora_weights = \"{init}\", which moved part of the base weight " +
            "into the adapter: it scores correctly only on the changed base it was trained on, so it cannot share a base model with " +
            "other adapters. Load it on a model of its own (PeftAdapter.Load), or convert it to a plain LoRA adapter in PEFT " +
            "(save_pretrained with path_initial_model_for_weight_conversion) and add that.");
    }

    /// <summary>Refuses, before anything is loaded, a saved tensor whose shape differs from the base model's, naming labels where that is the difference.</summary>
    void RefuseOtherShapes(string folder, AdapterFolderPreview preview)
    {
        var weights = Path.Combine(folder, PeftAdapter.WeightsFile);
        foreach (var (entry, parameter, shape) in preview.BaseTensors)
        {
            if (!_parameters.TryGetValue(parameter, out var value) || shape.SequenceEqual(value.shape)) continue;
            bool labels = shape.Length == value.shape.Length && shape.Length > 0 && value.shape[0] == NumLabels && shape.Skip(1).SequenceEqual(value.shape.Skip(1));
            throw new CheckpointFormatException(weights, labels
                ? $"its head ('{entry}') scores {shape[0]} labels, the set's base model {NumLabels}. Every adapter of a set scores the " +
                  $"same labels: keep adapters with {shape[0]} labels in a set opened with numLabels: {shape[0]}."
                : $"'{entry}' has shape [{string.Join(", ", shape)}], the base model's '{parameter}' [{string.Join(", ", value.shape)}]: " +
                  "the adapter was trained on another base model.");
        }
    }

    void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
