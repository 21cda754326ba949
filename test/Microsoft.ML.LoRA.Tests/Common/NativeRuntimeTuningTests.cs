namespace Microsoft.ML.LoRA.Tests.Common;

/// <summary>The native runtime settings the library applies when it loads (docs/benchmarks.md measures their effect).</summary>
public class NativeRuntimeTuningTests
{
    [Fact]
    public void On_linux_the_allocator_is_tuned_and_openmp_waits_passively_unless_the_environment_says_otherwise()
    {
        if (!OperatingSystem.IsLinux()) return;
        if (Environment.GetEnvironmentVariable("MICROSOFT_ML_LORA_NATIVE_TUNING") == "0")
        {
            NativeRuntimeTuning.AllocatorTuned.Should().BeFalse("the opt-out turns the tuning off");
            return;
        }

        NativeRuntimeTuning.AllocatorTuned.Should().BeTrue("glibc accepts the mallopt settings");
        NativeRuntimeTuning.OpenMpWaitPolicy.Should().NotBeNullOrEmpty()
            .And.Be(Environment.GetEnvironmentVariable("OMP_WAIT_POLICY"), "the policy reported is the one in the environment libgomp reads");
    }
}
