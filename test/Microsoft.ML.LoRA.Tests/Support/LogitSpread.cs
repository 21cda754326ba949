namespace Microsoft.ML.LoRA.Tests.Support;

/// <summary>How widely a model's logits vary: the scale that precision tests measure a logit change against.</summary>
public static class LogitSpread
{
    /// <summary>The standard deviation of every logit of every example (population form).</summary>
    public static double Of(IEnumerable<float[]> logits)
    {
        var all = logits.SelectMany(r => r).Select(v => (double)v).ToArray();
        double mean = all.Average();
        return Math.Sqrt(all.Average(v => (v - mean) * (v - mean)));
    }
}
