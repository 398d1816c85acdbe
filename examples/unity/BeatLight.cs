// BeatLight.cs: an affetto example for Unity (see bindings/unity/README.md).
//
// Put it on the GameObject that has the AffettoClient component, drag a Light into `beatLight`,
// and the light flashes on every downbeat of the music. The two public methods show how game
// code drives the music: call them from your own scripts (or UnityEvents).

using UnityEngine;
using Affetto;

[RequireComponent(typeof(AffettoClient))]
public class BeatLight : MonoBehaviour
{
    public Light beatLight;
    public float flashIntensity = 4f;
    public float fadePerSecond = 8f;

    AffettoClient affetto;

    void Start()
    {
        affetto = GetComponent<AffettoClient>();
        // Raised on the main thread (in AffettoClient.Update), so touching the scene is safe.
        affetto.OnBeat += (bar, beat, tempoBpm, timeS) =>
        {
            if (beat == 0) beatLight.intensity = flashIntensity;  // the downbeat
        };
        affetto.OnBar += (bar, state, valence, arousal, tension, tempoBpm, key, layers, timeS) =>
            Debug.Log("bar " + bar + ": " + state + " in " + key + " at " + tempoBpm + " BPM, "
                      + string.Join(" ", layers), this);
        affetto.SetState("explore");
    }

    void Update()
    {
        beatLight.intensity = Mathf.MoveTowards(beatLight.intensity, 0f, fadePerSecond * Time.deltaTime);
    }

    /// <summary>Combat begins: switch state on the next bar and punctuate it with a stinger.</summary>
    public void OnCombatStarted()
    {
        affetto.SetState("combat", "bar");
        affetto.Stinger("hit");
    }

    /// <summary>Health in [0, 1]: low health is darker (valence) and more agitated (arousal).</summary>
    public void OnHealthChanged(float health01)
    {
        float health = Mathf.Clamp01(health01);
        affetto.SetEmotion(health * 2f - 1f, 1f - health);
    }
}
