using System.Buffers.Binary;
using Microsoft.ML.LoRA.Cli.Reporting;
using Microsoft.ML.LoRA.Tests.Support;
using Microsoft.ML.LoRA.Training;

namespace Microsoft.ML.LoRA.Tests.Cli.Reporting;

/// <summary>The training chart is a real PNG of the requested size in the run folder.</summary>
public class TrainingChartTests
{
    static readonly byte[] PngSignature = { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A };

    static TrainingHistory History(bool withValidation) => new(
        new[]
        {
            new EpochSummary(1, 0.69, withValidation ? 0.60 : null, withValidation ? 0.71 : null, TimeSpan.FromMinutes(3)),
            new EpochSummary(2, 0.41, withValidation ? 0.45 : null, withValidation ? 0.84 : null, TimeSpan.FromMinutes(3)),
            new EpochSummary(3, 0.28, withValidation ? 0.47 : null, withValidation ? 0.83 : null, TimeSpan.FromMinutes(3)),
        },
        BestEpoch: 2, StoppedEarly: false, Cancelled: false);

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
}
