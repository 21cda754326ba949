using Microsoft.ML.LoRA.Models;

namespace Microsoft.ML.LoRA.Inference;

/// <summary>
/// A fitted model whose native memory several users share: the pipeline that holds it and every PredictionEngine made
/// from it. Each user holds one reference and gives it back once; the libtorch module is freed when the last reference
/// is given back and no call is running on it. After that every use throws <see cref="ObjectDisposedException"/> from
/// here, so no thread can reach freed native memory.
/// </summary>
internal sealed class SharedModel
{
    readonly object _gate = new();
    SequenceClassifier? _model;
    int _references = 1;
    int _running;

    /// <summary>Wraps <paramref name="model"/> with one reference, its creator's.</summary>
    public SharedModel(SequenceClassifier model) => _model = model;

    /// <summary>True once every reference was given back (the model may still be finishing a call).</summary>
    public bool IsReleased { get { lock (_gate) return _references == 0; } }

    /// <summary>The model, for work that does not run concurrently with the last release (saving, inspecting).</summary>
    /// <exception cref="ObjectDisposedException">Every reference was given back.</exception>
    public SequenceClassifier Model
    {
        get { lock (_gate) { ThrowIfReleased(); return _model!; } }
    }

    /// <summary>Adds a reference (a new PredictionEngine); it must be given back with <see cref="Release"/>.</summary>
    public void AddReference()
    {
        lock (_gate)
        {
            ThrowIfReleased();
            _references++;
        }
    }

    /// <summary>Gives back one reference; the last one frees the model once no call runs on it. Extra calls do nothing.</summary>
    public void Release()
    {
        SequenceClassifier? free = null;
        lock (_gate)
        {
            if (_references == 0) return;
            if (--_references == 0 && _running == 0) (free, _model) = (_model, null);
        }
        free?.Dispose();
    }

    /// <summary>Runs <paramref name="work"/> on the model; the model is not freed while it runs.</summary>
    /// <exception cref="ObjectDisposedException">Every reference was given back before the call.</exception>
    public T Use<T>(Func<SequenceClassifier, T> work)
    {
        SequenceClassifier model;
        lock (_gate)
        {
            ThrowIfReleased();
            _running++;
            model = _model!;
        }
        try { return work(model); }
        finally
        {
            SequenceClassifier? free = null;
            lock (_gate)
            {
                if (--_running == 0 && _references == 0) (free, _model) = (_model, null);
            }
            free?.Dispose();
        }
    }

    void ThrowIfReleased()
    {
        if (_references == 0)
            throw new ObjectDisposedException("LoraTextClassificationTransformer",
                "This LoRA model was disposed: the pipeline holding it and every PredictionEngine created from it were disposed. " +
                "Load it again with mlContext.Model.LoadWithLora.");
    }
}
