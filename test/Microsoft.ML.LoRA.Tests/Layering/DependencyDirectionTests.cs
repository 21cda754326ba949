using System.Text.RegularExpressions;
using Microsoft.ML.LoRA.Tests.Support;

namespace Microsoft.ML.LoRA.Tests.Layering;

/// <summary>
/// The library's folders depend on each other in one direction, as docs/architecture.md draws it: a file may use its
/// own layer and the layers below, never one above. Read from the sources, so a new upward reference fails here.
/// </summary>
public class DependencyDirectionTests
{
    /// <summary>Each folder's height; a folder may use folders at its own height or lower.</summary>
    static readonly Dictionary<string, int> Height = new()
    {
        ["Common"] = 0,
        ["Checkpoints"] = 1, ["Tokenization"] = 1,
        ["Hub"] = 2, ["Models"] = 2,
        ["Lora"] = 3, ["Diagnostics"] = 3,
        ["Training"] = 4,
        ["Inference"] = 5, ["Data"] = 5,
        ["MLNet"] = 6, ["Persistence"] = 6,
        ["Adaptation"] = 7, ["Sweeps"] = 7, ["Export"] = 7,
    };

    static string LibraryRoot => Path.Combine(SharedData.RepoRoot, "src", "Microsoft.ML.LoRA");

    /// <summary>Every library namespace a file names in code: using directives, and names qualified by a folder (comments left out).</summary>
    static IEnumerable<string> UsedFolders(string file)
    {
        var code = string.Join('\n', File.ReadLines(file).Select(l => Regex.Replace(l, @"//.*$", "")));
        foreach (Match m in Regex.Matches(code, @"Microsoft\.ML\.LoRA\.(\w+)")) yield return m.Groups[1].Value;
        // "Data" and "Common" are left out: as bare words they are also ordinary identifiers.
        foreach (Match m in Regex.Matches(code, @"(?<![.\w])(Checkpoints|Tokenization|Hub|Models|Lora|Diagnostics|Training|Inference|MLNet|Persistence|Adaptation|Sweeps|Export)\.[A-Z]"))
            yield return m.Groups[1].Value;
    }

    [Fact]
    public void No_library_folder_uses_a_folder_above_it()
    {
        var upward = new List<string>();
        foreach (var file in Directory.EnumerateFiles(LibraryRoot, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(LibraryRoot, file);
            var folder = relative.Split(Path.DirectorySeparatorChar)[0];
            if (folder is "bin" or "obj" || !Height.TryGetValue(folder, out int own)) continue;
            foreach (var used in UsedFolders(file).Distinct())
                if (Height.TryGetValue(used, out int height) && height > own)
                    upward.Add($"{relative} uses {used}");
        }
        upward.Should().BeEmpty();
    }

    [Fact]
    public void Every_library_folder_has_a_place_in_the_order()
    {
        var folders = Directory.EnumerateDirectories(LibraryRoot).Select(Path.GetFileName)
            .Where(f => f is not ("bin" or "obj" or "Properties")).ToList();
        folders.Should().OnlyContain(f => Height.ContainsKey(f!), "a new folder needs its height here and in docs/architecture.md");
    }

    [Fact]
    public void Model_families_and_kernels_are_apart_and_kernels_name_no_family()
    {
        var kernels = Directory.EnumerateFiles(Path.Combine(LibraryRoot, "Models", "Kernels"), "*.cs");
        var familyTypes = Directory.EnumerateDirectories(Path.Combine(LibraryRoot, "Models", "Families")).Select(d => Path.GetFileName(d)!).ToList();
        familyTypes.Should().Contain("Bert", "the family folders are where the test looks for family names");
        var named = kernels.SelectMany(f => familyTypes.Where(t => Regex.IsMatch(
                string.Join('\n', File.ReadLines(f).Select(l => Regex.Replace(l, @"//.*$", ""))), $@"\b{t}\w*\b"))
            .Select(t => $"{Path.GetFileName(f)} names {t}")).ToList();
        named.Should().BeEmpty("kernels serve every family and know none of them");
    }
}
