// SmokeTest.cs: drives AffettoOscClient against a running `affetto serve` (outside Unity).
//
//   mcs -out:smoke.exe ../AffettoClient.cs SmokeTest.cs
//   mono smoke.exe run 127.0.0.1 9000 [SECONDS]   # against the server
//   mono smoke.exe send 127.0.0.1 PORT            # every operation once, e.g. to `oscdump PORT`
//   mono smoke.exe listen 127.0.0.1 9000 SECONDS KEEPALIVE_S   # subscribe, then only Poll()
//   mono smoke.exe control 127.0.0.1 9000        # volume, pause/resume, stop with a fade-out, hello
//   mono smoke.exe text 127.0.0.1 9000 SECONDS LINE...   # subscribe, send the lines, print their readings
//
// `run` checks the client-side validation, then subscribes, sends emotion/state/stinger/tempo, no
// outputs (silent), an output the server lacks, a bad state name, a status request and the "notes"
// output, and prints one line per event received:
//   BEAT bar beat tempo time | BAR bar state v a t tempo "key" "layers" time | TRANSITION op beat
//   | NOTE channel pitch velocity layer time | STATUS {json} | ERROR code message
//   | VALIDATION ok|FAIL what
// It stops once it has seen 6 beats including a downbeat, both errors, the status and 4 notes (a
// note-on and a note-off among them), or after the time limit (seconds, default 20). Exit status 0
// when all were seen, 1 otherwise, 2 for bad usage.
// `control` prints the lines bindings/web/tests/control.mjs prints ("KIND elapsed_ms {json}"), for
// the same steps over OSC.
// `text` subscribes, sends each LINE with Text() and prints "TEXT {json}" for each OnText (its typed
// fields), "TRANSITION {json}" and "ERROR {json}", until every line is answered (a TEXT or an ERROR)
// or SECONDS pass; exit status 0 when every line was answered, 1 otherwise.
// tests/bindings/test_bindings.py runs each and checks the printed events.

using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using System.Threading;
using Affetto;

static class SmokeTest
{
    static int Main(string[] argv)
    {
        CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
        Thread.CurrentThread.CurrentCulture = CultureInfo.InvariantCulture;
        bool run = argv.Length >= 3 && argv.Length <= 4 && argv[0] == "run";
        bool send = argv.Length == 3 && argv[0] == "send";
        bool listen = argv.Length == 5 && argv[0] == "listen";
        bool control = argv.Length == 3 && argv[0] == "control";
        bool text = argv.Length >= 5 && argv[0] == "text";
        if (!run && !send && !listen && !control && !text)
        {
            Console.Error.WriteLine("usage: mono smoke.exe run HOST OSC_PORT [SECONDS] | send HOST PORT"
                                    + " | listen HOST OSC_PORT SECONDS KEEPALIVE_S | control HOST OSC_PORT"
                                    + " | text HOST OSC_PORT SECONDS LINE...");
            return 2;
        }
        string host = argv[1];
        int port = int.Parse(argv[2], CultureInfo.InvariantCulture);
        if (send) return SendEveryOperation(host, port);
        if (control) return Control(host, port);
        if (text)
        {
            var lines = new string[argv.Length - 4];
            Array.Copy(argv, 4, lines, 0, lines.Length);
            return Text(host, port, double.Parse(argv[3], CultureInfo.InvariantCulture), lines);
        }
        if (listen)
            return Listen(host, port, double.Parse(argv[3], CultureInfo.InvariantCulture),
                          float.Parse(argv[4], CultureInfo.InvariantCulture));
        double seconds = argv.Length > 3 ? double.Parse(argv[3], CultureInfo.InvariantCulture) : 20.0;

        using (var client = new AffettoOscClient(host, port))
        {
            bool valid = CheckValidation(client);
            int beats = 0, notes = 0;
            bool downbeat = false, stateError = false, outputError = false, status = false, noteOn = false, noteOff = false;
            client.OnBeat += (bar, beat, tempo, time) =>
            {
                beats++;
                downbeat |= beat == 0;
                Console.WriteLine("BEAT {0} {1} {2:R} {3:R}", bar, beat, tempo, time);
            };
            client.OnBar += (bar, state, v, a, t, tempo, key, layers, time) =>
                Console.WriteLine("BAR {0} {1} {2:R} {3:R} {4:R} {5:R} \"{6}\" \"{7}\" {8:R}", bar, state, v, a, t, tempo, key,
                                  string.Join(",", layers), time);
            client.OnTransition += (op, beat) => Console.WriteLine("TRANSITION {0} {1:R}", op, beat);
            client.OnStatus += s =>
            {
                status = true;
                Console.WriteLine("STATUS " + StatusJson(s));
            };
            client.OnNote += (channel, pitch, velocity, layer, time) =>
            {
                notes++;
                noteOn |= velocity > 0;
                noteOff |= velocity == 0;
                Console.WriteLine("NOTE {0} {1} {2} {3} {4:R}", channel, pitch, velocity, layer, time);
            };
            client.OnError += (code, message) =>
            {
                stateError |= message.Contains("no-such-state");
                outputError |= message.Contains("unknown output");
                Console.WriteLine("ERROR {0} {1}", code, message);
            };

            client.Subscribe();
            client.SetEmotion(0.5f, 0.6f, 0.2f);
            client.SetState("combat");
            client.Stinger("hit");
            client.Transport("tempo", 240);
            client.SetOutputs();  // silent: accepted by any server (OSC is not acknowledged)
            client.SetOutputs("audio");  // valid locally; a server without --audio must answer bad_argument
            client.SetState("no-such-state");  // valid locally; the server must answer bad_argument
            client.Status();
            client.SetOutputs(AffettoOscClient.NotesOutput);  // the session's notes, as OnNote

            Func<bool> done = () => beats >= 6 && downbeat && stateError && outputError && status
                                    && notes >= 4 && noteOn && noteOff;
            var deadline = DateTime.UtcNow.AddSeconds(seconds);
            while (DateTime.UtcNow < deadline && !done())
            {
                client.Poll();
                Thread.Sleep(5);
            }
            Console.Out.Flush();
            return valid && done() ? 0 : 1;
        }
    }

    // Subscribe, then only Poll() (the keep-alive is the only request): prints
    // "BEAT elapsed_ms bar beat" and "ERROR code message" lines.
    static int Listen(string host, int port, double seconds, float keepAliveS)
    {
        using (var client = new AffettoOscClient(host, port))
        {
            client.KeepAliveSeconds = keepAliveS;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            client.OnBeat += (bar, beat, tempo, time) =>
                Console.WriteLine("BEAT {0} {1} {2}", clock.ElapsedMilliseconds, bar, beat);
            client.OnError += (code, message) => Console.WriteLine("ERROR {0} {1}", code, message);
            client.Subscribe();
            while (clock.Elapsed.TotalSeconds < seconds)
            {
                client.Poll();
                Thread.Sleep(5);
            }
        }
        return 0;
    }

    // Subscribe, send the lines of story text, print the readings (OnText) and errors until each
    // line is answered.
    static int Text(string host, int port, double seconds, string[] lines)
    {
        using (var client = new AffettoOscClient(host, port))
        {
            client.KeepAliveSeconds = 0f;
            int answered = 0;
            client.OnText += t =>
            {
                answered++;
                Console.WriteLine("TEXT " + Json("valence", t.Valence, "arousal", t.Arousal, "confidence", t.Confidence,
                                                 "scene_valence", t.SceneValence, "scene_arousal", t.SceneArousal,
                                                 "changed", t.Changed, "scene", t.Scene));
            };
            client.OnTransition += (op, beat) => Console.WriteLine("TRANSITION " + Json("op", op, "beat", beat));
            client.OnError += (code, message) =>
            {
                answered++;
                Console.WriteLine("ERROR " + Json("code", code, "message", message));
            };
            client.Subscribe();
            Thread.Sleep(100);  // the subscription's challenge answered (Poll() raises nothing for it)
            foreach (string line in lines) client.Text(line);
            var deadline = DateTime.UtcNow.AddSeconds(seconds);
            while (DateTime.UtcNow < deadline && answered < lines.Length)
            {
                client.Poll();
                Thread.Sleep(5);
            }
            Console.Out.Flush();
            return answered >= lines.Length ? 0 : 1;
        }
    }

    // Every operation once, in a fixed order (tests/bindings/test_bindings.py compares oscdump's view of them).
    static int SendEveryOperation(string host, int port)
    {
        using (var client = new AffettoOscClient(host, port))
        {
            client.SetEmotion(0.5f, -0.2f);
            client.SetEmotion(0.25f, 0.75f, -1f, "bar");
            client.SetState("combat", "phrase");
            client.SetParam("health", 0.3f);
            client.Stinger("hit");
            client.Leitmotif("hero");
            client.Transport("start");
            client.Transport("tempo", 120.5f);
            client.Transport("seed", 42);
            client.Transport("sync", "beat");
            client.Transport("pause");
            client.Transport("resume");
            client.Transport("stop");
            client.Transport("stop", 2.5f);
            client.Transport("stop", 3);
            client.SetVolume(0.5f);
            client.SetVolume(0.25f, 2f);
            client.SetVolume(1f, 0.5f, "drums");
            client.SetVolume(0f, null, "melody");
            client.Hello();
            client.Hello("s3cret");
            client.Subscribe();
            client.Unsubscribe();
            client.Session("level-3");
            client.SetOutputs();
            client.SetOutputs("audio", "midi");
            client.Text("The wolf howled.");
            client.Status();
            Console.WriteLine("SENT {0}", client.LocalPort);
        }
        return 0;
    }

    // The steps of bindings/web/tests/control.mjs over OSC, printing the same "KIND elapsed_ms {json}"
    // lines. OSC is not acknowledged: a refused operation shows as an ERROR line, its step the last
    // MARK before it.
    static int Control(string host, int port)
    {
        using (var client = new AffettoOscClient(host, port))
        {
            client.KeepAliveSeconds = 0f;  // every status line answers a step
            var clock = System.Diagnostics.Stopwatch.StartNew();
            Action<string, string> line = (kind, json) =>
                Console.WriteLine("{0} {1} {2}", kind, clock.ElapsedMilliseconds, json);
            int beats = 0, statuses = 0;
            AffettoHello hello = null;
            client.OnBeat += (bar, beat, tempo, time) =>
            {
                beats++;
                line("BEAT", Json("bar", bar, "beat", beat, "tempo_bpm", tempo, "time_s", time));
            };
            client.OnNote += (channel, pitch, velocity, layer, time) =>
                line("NOTE", Json("channel", channel, "pitch", pitch, "velocity", velocity, "layer", layer, "time_s", time));
            client.OnVolume += (layer, level, fade, time) =>
                line("VOLUME", Json("layer", layer, "level", level, "fade_s", fade, "time_s", time));
            client.OnStatus += s =>
            {
                statuses++;
                line("STATUS", StatusJson(s));
            };
            client.OnHello += h =>
            {
                hello = h;
                line("HELLO", Json("session", h.Session, "version", h.Version, "states", h.States, "stingers", h.Stingers,
                                   "params", h.Params, "available_outputs", h.AvailableOutputs,
                                   "layer_names", h.LayerNames));
            };
            string[] listed = null;
            client.OnSessions += (names, profiles) =>
            {
                listed = names;
                line("SESSIONS", Json("names", names, "profiles", profiles));
            };
            client.OnError += (code, message) => line("ERROR", Json("code", code, "message", message));
            Action<string> mark = step => line("MARK", Json("step", step));
            Action<Func<bool>, int> pollUntil = (until, ms) =>
            {
                var deadline = clock.ElapsedMilliseconds + ms;
                do
                {
                    client.Poll();
                    Thread.Sleep(5);
                } while (!until() && clock.ElapsedMilliseconds < deadline);
            };
            Action<int> wait = ms => pollUntil(() => false, ms);
            Action<int> waitBeats = n =>
            {
                int until = beats + n;
                pollUntil(() => beats >= until, 8000);
            };
            Action<string> status = step =>
            {
                mark(step);
                int until = statuses + 1;
                client.Status();
                pollUntil(() => statuses >= until, 5000);
            };

            mark("subscribe");
            client.Subscribe();
            mark("output");
            client.SetOutputs(AffettoOscClient.NotesOutput);
            mark("tempo");
            client.Transport("tempo", 240f);
            mark("hello");
            client.Hello();
            pollUntil(() => hello != null, 5000);
            mark("sessions");
            client.Sessions();
            pollUntil(() => listed != null, 5000);
            waitBeats(4);
            mark("volume");
            client.SetVolume(0.5f, 0.5f);
            mark("layer-volume");
            string firstLayer = hello != null && hello.LayerNames.Length > 0 ? hello.LayerNames[0] : "melody";
            client.SetVolume(0.25f, null, firstLayer);  // the "f s" form: a layer, no fade
            wait(200);
            mark("unknown-layer");
            client.SetVolume(1f, null, "no-such-layer");
            wait(700);
            status("status-volume");
            mark("pause");
            client.Transport("pause");
            wait(2000);
            status("status-paused");
            mark("resume");
            client.Transport("resume");
            waitBeats(2);
            status("status-resumed");
            mark("stop");
            client.Transport("stop", 0.5f);
            wait(1500);
            status("status-stopped");
            mark("stinger-stopped");
            client.Stinger("hit");
            wait(300);
            mark("start");
            client.Transport("start");
            waitBeats(2);
            status("status-started");
            mark("end");
        }
        return 0;
    }

    static string StatusJson(AffettoStatus s)
    {
        return Json("session", s.Session, "state", s.State, "valence", s.Valence, "arousal", s.Arousal,
                    "tension", s.Tension, "tempo_bpm", s.TempoBpm, "bar", s.Bar, "playing", s.Playing,
                    "paused", s.Paused, "key", s.Key, "profile", s.Profile, "outputs", s.Outputs, "params", s.Params,
                    "states", s.States, "stingers", s.Stingers, "layers", s.Layers, "level", s.Level);
    }

    // A JSON object from key, value pairs (values: string, string[], bool, int, float or null).
    static string Json(params object[] pairs)
    {
        var json = new StringBuilder("{");
        for (int i = 0; i < pairs.Length; i += 2)
        {
            if (i > 0) json.Append(", ");
            json.Append(JsonValue(pairs[i])).Append(": ").Append(JsonValue(pairs[i + 1]));
        }
        return json.Append('}').ToString();
    }

    static string JsonValue(object value)
    {
        if (value == null) return "null";
        if (value is bool) return (bool)value ? "true" : "false";
        if (value is int) return ((int)value).ToString(CultureInfo.InvariantCulture);
        if (value is float) return ((float)value).ToString("R", CultureInfo.InvariantCulture);
        var names = value as string[];
        if (names != null)
        {
            var items = new List<string>();
            foreach (string name in names) items.Add(JsonValue(name));
            return "[" + string.Join(", ", items) + "]";
        }
        var text = new StringBuilder("\"");
        foreach (char c in (string)value)
        {
            if (c == '"' || c == '\\') text.Append('\\').Append(c);
            else if (c < ' ') text.AppendFormat(CultureInfo.InvariantCulture, "\\u{0:x4}", (int)c);
            else text.Append(c);
        }
        return text.Append('"').ToString();
    }

    // Each bad call must throw an ArgumentException (or a subclass) before anything is sent.
    static bool CheckValidation(AffettoOscClient client)
    {
        var bad = new Action[]
        {
            () => client.SetEmotion(float.NaN, 0f),
            () => client.SetEmotion(0f, float.PositiveInfinity),
            () => client.SetEmotion(1.5f, 0f),
            () => client.SetEmotion(0f, 0f, -1.01f),
            () => client.SetEmotion(0f, 0f, null, "later"),
            () => client.SetState(""),
            () => client.SetState(new string('x', 65)),
            () => client.SetState(null),
            () => client.SetParam("health", float.NaN),
            () => client.Stinger("a\0b"),
            () => client.Transport("rewind"),
            () => client.Transport("tempo"),
            () => client.Transport("tempo", 1000f),
            () => client.Transport("seed", -1),
            () => client.Transport("sync", "sometimes"),
            () => client.Transport("pause", 1f),
            () => client.Transport("resume", 1),
            () => client.Transport("start", 1f),
            () => client.Transport("stop", -0.5f),
            () => client.Transport("stop", 60.5f),
            () => client.Transport("stop", float.NaN),
            () => client.Transport("stop", 61),
            () => client.Transport("stop", "slowly"),
            () => client.SetVolume(1.01f),
            () => client.SetVolume(-0.01f),
            () => client.SetVolume(float.NaN),
            () => client.SetVolume(0.5f, -1f),
            () => client.SetVolume(0.5f, 61f),
            () => client.SetVolume(0.5f, float.PositiveInfinity),
            () => client.SetVolume(0.5f, null, ""),
            () => client.SetVolume(0.5f, null, new string('x', 65)),
            () => client.SetVolume(0.5f, 1f, "a\0b"),
            () => client.Hello(""),
            () => client.Hello(new string('x', 257)),
            () => client.Session(""),
            () => client.SetOutputs(null),
            () => client.SetOutputs(""),
            () => client.SetOutputs("audio", null),
            () => client.SetOutputs(new string('x', 65)),
            () => client.SetOutputs("a", "b", "c", "d", "e", "f", "g", "h", "i"),
            () => client.Text(new string('x', 10001)),
            () => client.Text(""),
            () => client.Text(new string('\u00e9', 4086)),  // 8172 bytes in UTF-8: over one OSC packet
            () => client.Text("a\0b"),
        };
        bool ok = true;
        for (int i = 0; i < bad.Length; i++)
        {
            try
            {
                bad[i]();
                Console.WriteLine("VALIDATION FAIL case {0} did not throw", i);
                ok = false;
            }
            catch (ArgumentException)
            {
                // expected
            }
        }
        if (ok) Console.WriteLine("VALIDATION ok {0}", bad.Length);
        return ok;
    }
}
