using System.Text.Json;
using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Cli.Reporting;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.Cli.Running;

/// <summary>
/// The folder a training run writes, holding everything needed to reproduce and inspect it: model.zip (the pipeline),
/// options.json (the command line and every setting), metrics.json (final metrics), history.json (per epoch),
/// training.png (loss and validation accuracy per epoch) and log.txt (messages).
/// </summary>
internal sealed class RunFolder
{
    public RunFolder(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }
    public string ModelFile => File("model.zip");
    public string OptionsFile => File("options.json");
    public string MetricsFile => File("metrics.json");
    public string HistoryFile => File("history.json");
    public string LogFile => File("log.txt");

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void WriteJson<T>(string file, T value) =>
        AtomicFile.WriteAllText(file, JsonSerializer.Serialize(value, JsonOutput.Indented) + Environment.NewLine);

    public string WriteChart(TrainingHistory history) => TrainingChart.Save(history, Path);

    /// <summary>A default run folder under ./runs named after the command and the time.</summary>
    public static string DefaultPath(string command) =>
        System.IO.Path.Combine("runs", $"{command}-{DateTime.Now:yyyyMMdd-HHmmss}");
}
