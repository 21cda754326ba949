using System.Buffers.Binary;
using Microsoft.ML.LoRA.Cli.Reporting;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.Tests.Cli.Reporting;

/// <summary>
/// The training chart is a real PNG of the requested size in the run folder, with the per-step loss (raw and smoothed)
/// on the epoch axis, an accuracy axis from 0 to 1, and the legend outside the data area.
/// </summary>
public class TrainingChartTests
{
    static readonly byte[] PngSignature = { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A };

    static TrainingHistory History(bool withValidation, bool withSteps = true) => new(
        new[]
        {
            new EpochSummary(1, 0.69, withValidation ? 0.60 : null, withValidation ? 0.71 : null, TimeSpan.FromMinutes(3)),
            new EpochSummary(2, 0.41, withValidation ? 0.45 : null, withValidation ? 0.84 : null, TimeSpan.FromMinutes(3)),
            new EpochSummary(3, 0.28, withValidation ? 0.47 : null, withValidation ? 0.83 : null, TimeSpan.FromMinutes(3)),
        },
        BestEpoch: 2, StoppedEarly: false, Cancelled: false,
        StepLosses: withSteps ? Enumerable.Range(0, 300).Select(i => (float)(0.7 - i / 1000.0 + (i % 2 == 0 ? 0.1 : -0.1))).ToArray() : null,
        StepsPerEpoch: withSteps ? 100 : 0);

    static (int Width, int Height) PngSize(byte[] png) =>
        (BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16, 4)), BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20, 4)));

    [Fact]
    public void Chart_is_written_as_a_png_into_the_run_folder()
    {
        using var dir = new TempDir();
        var runFolder = Path.Combine(dir.Path, "run-1");

        var path = TrainingChart.Save(History(withValidation: true), runFolder);

        path.Should().Be(Path.Combine(runFolder, TrainingChart.DefaultFileName));
        var png = File.ReadAllBytes(path);
        png.AsSpan(0, 8).ToArray().Should().Equal(PngSignature);
        System.Text.Encoding.ASCII.GetString(png, 12, 4).Should().Be("IHDR");
        PngSize(png).Should().Be((900, 500));
        png.Length.Should().BeInRange(10_000, 2_000_000, "a drawn 900×500 chart, not an empty image");
        Directory.GetFiles(runFolder).Should().ContainSingle("no temporary file is left behind");
    }

    [Fact]
    public void Chart_without_validation_is_drawn_too()
    {
        using var dir = new TempDir();

        var path = TrainingChart.Save(History(withValidation: false), dir.Path, "loss.png", width: 400, height: 300);

        PngSize(File.ReadAllBytes(path)).Should().Be((400, 300));
    }

    [Fact]
    public void Validation_lines_add_ink()
    {
        using var dir = new TempDir();

        var with = new FileInfo(TrainingChart.Save(History(withValidation: true), dir.Path, "with.png")).Length;
        var without = new FileInfo(TrainingChart.Save(History(withValidation: false), dir.Path, "without.png")).Length;

        with.Should().BeGreaterThan(without);
    }

    [Fact]
    public void Empty_history_cannot_be_charted()
    {
        using var dir = new TempDir();

        var act = () => TrainingChart.Save(new TrainingHistory(Array.Empty<EpochSummary>(), 0, false, false), dir.Path);

        act.Should().Throw<ArgumentException>().WithMessage("*no epochs*");
    }

    [Fact]
    public void Step_losses_sit_on_the_epoch_axis_and_the_smoothed_curve_irons_out_batch_noise()
    {
        var curve = StepLossCurve.Of(History(withValidation: true))!;

        curve.Epoch.Should().HaveCount(300);
        curve.Epoch[99].Should().Be(1, "an epoch's last step meets that epoch's summary point");
        curve.Epoch[^1].Should().Be(3);
        static double Spread(double[] v) => v.Zip(v.Skip(1), (a, b) => Math.Abs(a - b)).Average();
        Spread(curve.Smoothed).Should().BeLessThan(Spread(curve.Loss) / 10, "the raw losses alternate by 0.2 from step to step");
        curve.Smoothed.Average().Should().BeApproximately(curve.Loss.Average(), 0.01, "smoothing keeps the level");
        StepLossCurve.Of(History(withValidation: true, withSteps: false)).Should().BeNull("older histories have no per-step losses");
    }

    [Theory]
    [InlineData(new[] { 1.0, 2.0, 3.0, 4.0, 5.0 }, 3, new[] { 1.5, 2.0, 3.0, 4.0, 4.5 })]
    [InlineData(new[] { 1.0, 3.0 }, 1, new[] { 1.0, 3.0 })]
    public void Smoothing_is_the_mean_of_a_centred_window_shrunk_at_the_ends(double[] values, int window, double[] expected)
    {
        StepLossCurve.Smooth(values, window).Should().Equal(expected);
    }

    [Fact]
    public void The_accuracy_axis_spans_0_to_1_and_the_legend_sits_outside_the_data_area()
    {
        using var plot = TrainingChart.Draw(History(withValidation: true));
        plot.RenderInMemory(900, 500);

        plot.Axes.Right.Min.Should().Be(0);
        plot.Axes.Right.Max.Should().Be(1);
        plot.Legend.IsVisible.Should().BeFalse("the legend inside the data area is hidden");
        plot.Axes.GetPanels().OfType<ScottPlot.Panels.LegendPanel>().Should().ContainSingle("the legend is a panel beside the data area");
        plot.GetPlottables().OfType<ScottPlot.IHasLegendText>().Select(p => p.LegendText)
            .Should().Contain(t => t.StartsWith("Training loss per step, smoothed")).And.Contain("Training loss per epoch");
    }
}
