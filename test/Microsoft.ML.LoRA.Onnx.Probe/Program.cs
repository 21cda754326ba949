using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.LoRA.Onnx;

// Usage: probe EXPORT_FOLDER TEXTS_FILE (one text a line). Scores the texts with OnnxTextClassifier and with the ML.NET
// pipeline (LoraOnnxClassifier), then prints one JSON object: both sets of probabilities and predicted labels, the
// lines of /proc/self/maps that name torch, whether ONNX Runtime's library is mapped (so the check sees native
// libraries at all), and the loaded assemblies whose name contains Torch.
if (args.Length != 2)
{
    Console.Error.WriteLine("usage: probe EXPORT_FOLDER TEXTS_FILE");
    return 2;
}
var folder = args[0];
var texts = File.ReadAllLines(args[1]);

using var classifier = OnnxTextClassifier.Load(folder);
var apiProbabilities = classifier.Logits(texts).Select(OnnxTextClassifier.Softmax).ToArray();
var apiLabels = apiProbabilities.Select(p => classifier.Labels[Array.IndexOf(p, p.Max())]).ToArray();

var ml = new MLContext(seed: 1);
var data = ml.Data.LoadFromEnumerable(texts.Select(t => new Row { Text = t }));
var scored = ml.Transforms.LoraOnnxClassifier(folder, textColumnName: "Text").Fit(data).Transform(data);
var mlnetProbabilities = scored.GetColumn<float[]>(LoraOnnxCatalog.ScoreColumnName).ToArray();
var mlnetLabels = scored.GetColumn<string>(LoraOnnxCatalog.PredictedLabelColumnName).ToArray();

var maps = File.Exists("/proc/self/maps") ? File.ReadAllLines("/proc/self/maps") : Array.Empty<string>();
Console.WriteLine(JsonSerializer.Serialize(new
{
    apiProbabilities,
    apiLabels,
    mlnetProbabilities,
    mlnetLabels,
    mapsRead = maps.Length > 0,
    torchMaps = maps.Where(l => l.Contains("torch", StringComparison.OrdinalIgnoreCase)).Distinct().ToArray(),
    onnxRuntimeMapped = maps.Any(l => l.Contains("libonnxruntime", StringComparison.Ordinal)),
    torchAssemblies = AppDomain.CurrentDomain.GetAssemblies().Select(a => a.GetName().Name ?? "")
        .Where(n => n.Contains("Torch", StringComparison.OrdinalIgnoreCase)).ToArray(),
}));
return 0;

sealed class Row
{
    public string Text { get; set; } = "";
}
