using Microsoft.ML.LoRA.Build;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Build;

/// <summary>
/// The build step that lets TorchSharp load on Debian 12: GLIBCXX_3.4.32 is marked weak in the copy of
/// libLibTorchSharp.so in the build output, only when needed, only for the allowed marker symbol, never in the NuGet cache.
/// </summary>
public class ElfVersionRequirementPatchTests
{
    const string Version = "GLIBCXX_3.4.32";
    static readonly HashSet<string> Allowed = new() { "_ZSt21ios_base_library_initv" };

    static string NuGetCacheCopy()
    {
        var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var path = Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        File.Exists(path).Should().BeTrue($"TorchSharp's native library is in the package cache ({path})");
        return path;
    }

    static string OutputCopy() => Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");

    static ElfVersionRequirement Requirement(string path) =>
        ElfVersionRequirementPatch.ReadRequirements(File.ReadAllBytes(path)).Single(r => r.Version == Version);

    [Fact]
    public void The_package_library_needs_the_version_for_the_iostream_marker_only()
    {
        var requirement = Requirement(NuGetCacheCopy());

        requirement.Library.Should().Be("libstdc++.so.6");
        requirement.Symbols.Should().Equal("_ZSt21ios_base_library_initv");
    }

    [Fact]
    public void The_build_marks_the_output_copy_weak_and_leaves_the_package_cache_alone()
    {
        bool systemHasIt = ElfVersionRequirementPatch.SystemProvides(Version, out _);

        Requirement(NuGetCacheCopy()).IsWeak.Should().BeFalse("the NuGet cache is never written");
        Requirement(OutputCopy()).IsWeak.Should().Be(!systemHasIt, "the step runs only where the system libstdc++ lacks the version");
    }

    [Fact]
    public void Making_the_requirement_weak_changes_one_flag_and_nothing_else()
    {
        using var dir = new TempDir();
        var copy = dir.File("libLibTorchSharp.so");
        File.Copy(NuGetCacheCopy(), copy);
        var before = File.ReadAllBytes(copy);

        var outcome = ElfVersionRequirementPatch.MakeWeak(copy, Version, Allowed, out var message);
        var after = File.ReadAllBytes(copy);

        outcome.Should().Be(ElfPatchOutcome.Patched, message);
        Requirement(copy).IsWeak.Should().BeTrue();
        after.Length.Should().Be(before.Length);
        Enumerable.Range(0, before.Length).Count(i => before[i] != after[i]).Should().Be(1, "only the flag byte changes");
        ElfVersionRequirementPatch.MakeWeak(copy, Version, Allowed, out _).Should().Be(ElfPatchOutcome.AlreadyWeak);
    }

    [Fact]
    public void The_patch_writes_a_new_file_so_hard_links_to_the_original_stay_intact()
    {
        using var dir = new TempDir();
        var original = dir.File("original.so");
        var link = dir.File("linked.so");
        File.Copy(NuGetCacheCopy(), original);
        var hardLink = System.Diagnostics.Process.Start("ln", new[] { original, link })!;
        hardLink.WaitForExit();
        hardLink.ExitCode.Should().Be(0);

        ElfVersionRequirementPatch.MakeWeak(link, Version, Allowed, out _).Should().Be(ElfPatchOutcome.Patched);

        Requirement(link).IsWeak.Should().BeTrue();
        Requirement(original).IsWeak.Should().BeFalse("the other name of the old file keeps its bytes");
    }

    [Fact]
    public void A_requirement_used_by_other_symbols_is_refused()
    {
        using var dir = new TempDir();
        var copy = dir.File("lib.so");
        File.Copy(NuGetCacheCopy(), copy);

        var outcome = ElfVersionRequirementPatch.MakeWeak(copy, Version, new HashSet<string> { "some_other_symbol" }, out var message);

        outcome.Should().Be(ElfPatchOutcome.Refused);
        message.Should().Contain("_ZSt21ios_base_library_initv");
        Requirement(copy).IsWeak.Should().BeFalse();
    }

    [Fact]
    public void Versions_defined_by_the_system_libstdcxx_are_recognised()
    {
        var library = ElfVersionRequirementPatch.SystemLibStdCxxCandidates().First();
        var bytes = File.ReadAllBytes(library);

        ElfVersionRequirementPatch.DefinesVersion(bytes, "GLIBCXX_3.4.30").Should().BeTrue($"{library} is GCC 12's or newer");
        ElfVersionRequirementPatch.DefinesVersion(bytes, "GLIBCXX_9.9.99").Should().BeFalse();
    }

    [Fact]
    public void A_file_that_does_not_need_the_version_is_left_alone()
    {
        using var dir = new TempDir();
        var copy = dir.File("libstdc++.so.6");
        File.Copy(ElfVersionRequirementPatch.SystemLibStdCxxCandidates().First(), copy);
        var before = File.ReadAllBytes(copy);

        ElfVersionRequirementPatch.MakeWeak(copy, Version, Allowed, out _).Should().Be(ElfPatchOutcome.NotRequired);
        File.ReadAllBytes(copy).Should().Equal(before);
    }

    [Fact]
    public void Files_that_are_not_elf_are_reported_not_patched()
    {
        using var dir = new TempDir();
        var text = dir.File("not-elf.so");
        File.WriteAllText(text, "hello");

        var act = () => ElfVersionRequirementPatch.MakeWeak(text, Version, Allowed, out _);

        act.Should().Throw<InvalidDataException>().WithMessage("*not an ELF file*");
    }
}
