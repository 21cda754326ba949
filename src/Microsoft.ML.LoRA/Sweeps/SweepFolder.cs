namespace Microsoft.ML.LoRA.Sweeps;

/// <summary>
/// The files of a sweep's output folder:
/// sweep.json (settings a resumed run must match), trials.jsonl (journal of finished trials), trials/&lt;id&gt;/model.zip,
/// results.csv, results.json, best-model.zip and best.json.
/// </summary>
internal sealed class SweepFolder
{
    public SweepFolder(string root)
    {
        Root = Path.GetFullPath(root);
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }
    public string Manifest => Path.Combine(Root, "sweep.json");
    public string Journal => Path.Combine(Root, "trials.jsonl");
    public string ResultsCsv => Path.Combine(Root, "results.csv");
    public string ResultsJson => Path.Combine(Root, "results.json");
    public string BestModel => Path.Combine(Root, "best-model.zip");
    public string BestJson => Path.Combine(Root, "best.json");

    /// <summary>trials/&lt;id&gt;/model.zip, relative to the folder (as stored in the journal).</summary>
    public static string TrialModelRelative(string trialId) => $"trials/{trialId}/model.zip";

    public string TrialModel(string trialId) => Full(TrialModelRelative(trialId));

    public string Full(string relative) => Path.GetFullPath(Path.Combine(Root, relative));

    public string Relative(string full) => Path.GetRelativePath(Root, full).Replace('\\', '/');
}
