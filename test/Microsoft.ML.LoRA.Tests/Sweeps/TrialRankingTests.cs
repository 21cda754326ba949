using Microsoft.ML.LoRA.Sweeps;

namespace Microsoft.ML.LoRA.Tests.Sweeps;

/// <summary>The order of results: metric direction, NaN and failures last, later rungs first, deterministic ties.</summary>
public class TrialRankingTests
{
    static TrialResult Trial(int sequence, double accuracy, double logLoss, int rung = 0, TrialStatus status = TrialStatus.Succeeded, SweepMetric metric = SweepMetric.Accuracy)
    {
        var metrics = new TrialMetrics(accuracy, accuracy, logLoss, null, null);
        return new TrialResult
        {
            Configuration = new TrialConfiguration(sequence + 1, 8, 0, 1e-3, 1, null), Sequence = sequence, Rung = rung, Status = status,
            Metrics = status == TrialStatus.Succeeded ? metrics : null,
            Objective = status == TrialStatus.Succeeded ? metrics.Get(metric) : double.NaN,
        };
    }

    [Fact]
    public void Higher_is_better_for_accuracy_and_lower_for_log_loss()
    {
        var trials = new[] { Trial(0, 0.7, 0.5), Trial(1, 0.9, 0.6), Trial(2, 0.8, 0.2) };

        TrialRanking.Rank(trials, SweepMetric.Accuracy).Select(t => t.Sequence).Should().Equal(1, 2, 0);
        TrialRanking.Rank(trials.Select(t => Trial(t.Sequence, t.Metrics!.Accuracy, t.Metrics.LogLoss, metric: SweepMetric.LogLoss)), SweepMetric.LogLoss)
            .Select(t => t.Sequence).Should().Equal(2, 0, 1);
    }

    [Fact]
    public void Ties_break_on_log_loss_then_plan_order_and_failures_and_NaN_come_last()
    {
        var trials = new[]
        {
            Trial(0, 0.8, 0.5), Trial(1, double.NaN, 0.1), Trial(2, 0, 0, status: TrialStatus.Failed), Trial(3, 0.8, 0.3), Trial(4, 0.8, 0.3),
        };

        TrialRanking.Rank(trials, SweepMetric.Accuracy).Select(t => t.Sequence).Should().Equal(3, 4, 0, 1, 2);
    }

    [Fact]
    public void Later_rungs_rank_before_earlier_ones()
    {
        var trials = new[] { Trial(0, 0.95, 0.1, rung: 0), Trial(1, 0.6, 0.9, rung: 1), Trial(2, 0.7, 0.8, rung: 1), Trial(3, 0.5, 0.5, rung: 2) };

        TrialRanking.Rank(trials, SweepMetric.Accuracy).Select(t => t.Sequence).Should().Equal(3, 2, 1, 0);
    }
}
