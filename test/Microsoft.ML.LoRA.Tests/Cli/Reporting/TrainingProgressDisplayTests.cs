using Microsoft.ML.LoRA.Cli.Infrastructure;
using Microsoft.ML.LoRA.Cli.Reporting;
using Microsoft.ML.LoRA.Training;
using Spectre.Console;

namespace Microsoft.ML.LoRA.Tests.Cli.Reporting;

/// <summary>Training progress shows live on a terminal and as plain, throttled lines when redirected.</summary>
public class TrainingProgressDisplayTests
{
    /// <summary>Two epochs of 10 steps, 3 s per step, 32 samples a step.</summary>
    static IEnumerable<TrainingProgress> Run()
    {
        const int stepsPerEpoch = 10, epochs = 2;
        for (int epoch = 1; epoch <= epochs; epoch++)
            for (int i = 1; i <= stepsPerEpoch; i++)
            {
                long step = (epoch - 1) * stepsPerEpoch + i;
                var elapsed = TimeSpan.FromSeconds(3 * step);
                yield return new TrainingProgress(epoch, epochs, step, epochs * stepsPerEpoch, 1.0 / step, 2e-5, 32 / 3.0,
                    elapsed, TimeSpan.FromSeconds(3 * (epochs * stepsPerEpoch - step)));
            }
    }

    [Fact]
    public void Redirected_output_gets_plain_lines()
    {
        var console = ConsoleFactory.Create(new StringWriter());

        using var display = TrainingProgressDisplay.Create(console);

        display.Should().BeOfType<PlainTrainingProgress>();
    }

    [Fact]
    public void An_interactive_terminal_gets_the_live_display()
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(new StringWriter()),
            Ansi = AnsiSupport.Yes,
            Interactive = InteractionSupport.Yes,
        });

        using var display = TrainingProgressDisplay.Create(console);

        display.Should().BeOfType<LiveTrainingProgress>();
    }

    [Fact]
    public void Plain_lines_come_at_each_epoch_every_interval_and_at_the_end()
    {
        var writer = new StringWriter();
        using (var display = TrainingProgressDisplay.Create(ConsoleFactory.Create(writer), plainInterval: TimeSpan.FromSeconds(10)))
            foreach (var p in Run()) display.Report(p);

        var steps = writer.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split("  ")[1]).ToList();
        // epoch 1 starts at step 1 (3 s); then 10 s later: step 5 (15 s), step 9 (27 s); epoch 2 starts at step 11 (33 s);
        // then step 15 (45 s), step 19 (57 s); the last step, 20.
        steps.Should().Equal("step 1/20 (5.0%)", "step 5/20 (25.0%)", "step 9/20 (45.0%)", "step 11/20 (55.0%)",
            "step 15/20 (75.0%)", "step 19/20 (95.0%)", "step 20/20 (100.0%)");
    }

    [Fact]
    public void A_plain_line_tells_loss_throughput_and_time_left()
    {
        var writer = new StringWriter();
        using (var display = TrainingProgressDisplay.Create(ConsoleFactory.Create(writer)))
            display.Report(Run().First());

        writer.ToString().TrimEnd().Should().Be("epoch 1/2  step 1/20 (5.0%)  loss 1.0000  lr 2.00e-05  10.7 samples/s  ETA 0:00:57");
    }

    [Fact]
    public void Unknown_time_left_is_shown_as_dashes()
    {
        TrainingProgressText.Duration(null).Should().Be("--");
        TrainingProgressText.Duration(TimeSpan.FromSeconds(3725)).Should().Be("1:02:05");
    }

    [Fact]
    public void The_live_display_ends_showing_the_last_report()
    {
        var writer = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = AnsiSupport.Yes,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.Yes,
        });
        console.Profile.Width = 80;

        using (var display = TrainingProgressDisplay.Create(console))
            foreach (var p in Run()) display.Report(p);

        var screen = writer.ToString();
        screen.Should().Contain("epoch 2/2  loss 0.0500  10.7 samples/s  ETA 0:00:00", "the label fits an 80-column terminal");
        screen.Should().Contain("100%");
    }
}
